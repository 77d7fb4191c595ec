"""Loading a batch of stored events into the DuckDB base tables, vectorised.

Python hands DuckDB three lists (position, topic, state); DuckDB parses the JSON
and extracts the columns. Only the distinct phone, email and anonymous-id values
come back to Python, to be replaced by keyed pseudonyms: no raw contact detail
reaches the database file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb
from eventsourcing.utils import get_topic

from journey.domain.events import IdentityLinked, IdentityUnlinked, TouchRecorded
from journey.projections.pseudonym import Pseudonymiser

__all__ = ["Poison", "load_batch"]

TOUCH = get_topic(TouchRecorded)
LINK = get_topic(IdentityLinked)
UNLINK = get_topic(IdentityUnlinked)
KNOWN_VERSIONS = {TOUCH: TouchRecorded.class_version, LINK: IdentityLinked.class_version,
                  UNLINK: IdentityUnlinked.class_version}

# (column, JSON path under $.touch) extracted in one pass over each state.
FIELDS = [
    ("event_id", "event_id"), ("type", "type"), ("activity", "activity"),
    ("channel", "channel"), ("source", "source"), ("occurred_at", "occurred_at"),
    ("patient_id", "customer.customer_id"), ("phone", "customer.phone"),
    ("email", "customer.email"), ("anonymous_id", "customer.anonymous_id"),
    ("amount", "properties.amount.amount"), ("amount_currency", "properties.amount.currency"),
    ("total", "properties.total.amount"), ("total_currency", "properties.total.currency"),
    ("cost", "properties.cost.amount"), ("cost_currency", "properties.cost.currency"),
    ("doctor", "properties.doctor"), ("to_doctor", "properties.to_doctor"),
    ("administrator", "properties.administrator"), ("branch", "properties.branch"),
    ("booking_id", "properties.booking_id"), ("visit_id", "properties.visit_id"),
    ("campaign", "properties.campaign"), ("direction", "properties.direction"),
    ("purpose", "properties.purpose"), ("answered", "properties.answered"),
    ("outcome", "properties.outcome"), ("status", "properties.status"),
    ("rating", "properties.rating"),
]
_PATHS = "[" + ", ".join(f"'$.touch.{path}'" for _, path in FIELDS) + "]"
_COLUMNS = ",\n        ".join(f"v[{i}] AS {name}" for i, (name, _) in enumerate(FIELDS, start=1))
# Free text and names never reach the analytics database (merge-patch nulls remove keys).
_PRIVATE = '{"text": null, "name": null, "notes": null}'

_STAGE = f"""
CREATE OR REPLACE TEMP TABLE parsed AS
SELECT position, topic, state IS NOT NULL AS valid,
    coalesce(TRY_CAST(json_extract_string(state, '$.class_version') AS INTEGER), 1) AS class_version,
    TRY_CAST(json_extract_string(state, '$.recorded_at') AS TIMESTAMPTZ) AS recorded_at,
    json_merge_patch(json_extract(state, '$.touch.properties'), '{_PRIVATE}') AS properties,
    {_COLUMNS}
FROM (SELECT position, topic, state, json_extract_string(state, {_PATHS}) AS v
      FROM (SELECT position, topic, CASE WHEN json_valid(raw) THEN raw END AS state
            FROM (SELECT unnest($1) AS position, unnest($2) AS topic, unnest($3) AS raw)))
"""

_POISON = """
SELECT position, event_id, topic, CASE
    WHEN NOT valid THEN 'the stored state is not valid JSON'
    WHEN topic NOT IN ($topics) THEN 'unknown event class ' || topic
    WHEN class_version <> ($versions)[topic] THEN
        'stored as version ' || class_version || ' of ' || topic || ', which has no upcaster here'
    WHEN event_id IS NULL THEN 'no event_id'
    WHEN type IS NULL THEN 'no type'
    WHEN recorded_at IS NULL THEN 'no readable recorded_at'
    WHEN TRY_CAST(occurred_at AS TIMESTAMPTZ) IS NULL THEN 'occurred_at is not a timestamp: ' || coalesce(occurred_at, 'missing')
    WHEN TRY_CAST(coalesce(amount, total, cost) AS DECIMAL(21, 6)) IS NULL
         AND coalesce(amount, total, cost) IS NOT NULL THEN 'amount is not a decimal'
END AS reason
FROM parsed
"""

_INSERT_TOUCHES = """
INSERT INTO internal.touches
SELECT p.position, p.event_id, p.type, coalesce(p.activity, p.type), p.channel, p.source,
    CAST(p.occurred_at AS TIMESTAMPTZ), p.recorded_at, p.patient_id,
    kp.key, ke.key, ka.key,
    CAST(coalesce(p.amount, p.total, p.cost) AS DECIMAL(21, 6)),
    coalesce(p.amount_currency, p.total_currency, p.cost_currency),
    coalesce(p.doctor, p.to_doctor), p.administrator, p.branch, p.booking_id, p.visit_id,
    p.campaign, p.direction, p.purpose, TRY_CAST(p.answered AS BOOLEAN), p.outcome, p.status,
    TRY_CAST(p.rating AS INTEGER), p.properties
FROM parsed p
LEFT JOIN pseudonyms kp ON kp.kind = 'phone' AND kp.value = p.phone
LEFT JOIN pseudonyms ke ON ke.kind = 'email' AND ke.value = p.email
LEFT JOIN pseudonyms ka ON ka.kind = 'anonymous_id' AND ka.value = p.anonymous_id
WHERE p.topic = $topic AND p.position NOT IN (SELECT position FROM poison) AND $visible
"""

_INSERT_IDENTITY = """
INSERT INTO internal.identity_events
SELECT p.position, p.event_id, CASE WHEN p.topic = $link THEN 'link' ELSE 'unlink' END,
    p.recorded_at, p.patient_id, kp.key, ke.key, ka.key
FROM parsed p
LEFT JOIN pseudonyms kp ON kp.kind = 'phone' AND kp.value = p.phone
LEFT JOIN pseudonyms ke ON ke.kind = 'email' AND ke.value = p.email
LEFT JOIN pseudonyms ka ON ka.kind = 'anonymous_id' AND ka.value = p.anonymous_id
WHERE p.topic IN ($link, $unlink) AND p.position NOT IN (SELECT position FROM poison) AND $visible
"""


@dataclass(frozen=True)
class Poison:
    """A stored event the projector cannot handle, and why."""

    position: int
    event_id: str | None
    topic: str
    reason: str


def load_batch(
    con: duckdb.DuckDBPyConnection,
    positions: Sequence[int],
    topics: Sequence[str],
    states: Sequence[str],
    pseudonyms: Pseudonymiser,
    *,
    as_of: datetime | None = None,
) -> tuple[int, list[Poison]]:
    """Insert one batch into the base tables (the caller owns the transaction).

    Returns how many events were loaded and the poison events found (not loaded).
    ``as_of`` loads only events recorded up to that moment.
    """
    con.execute(_STAGE, [list(positions), list(topics), list(states)])
    topic_list = ", ".join(f"'{t}'" for t in KNOWN_VERSIONS)
    versions = "MAP {" + ", ".join(f"'{t}': {v}" for t, v in KNOWN_VERSIONS.items()) + "}"
    con.execute("CREATE OR REPLACE TEMP TABLE poison AS SELECT * FROM ("
                + _POISON.replace("$topics", topic_list).replace("$versions", versions)
                + ") WHERE reason IS NOT NULL")
    poison = [Poison(*row) for row in con.execute("SELECT * FROM poison ORDER BY position").fetchall()]
    _pseudonymise(con, pseudonyms)
    visible = "TRUE" if as_of is None else "p.recorded_at <= $as_of"
    params = {"as_of": as_of} if as_of is not None else {}
    con.execute(_INSERT_TOUCHES.replace("$topic", f"'{TOUCH}'").replace("$visible", visible), params)
    loaded = con.execute("SELECT count(*) FROM parsed p WHERE p.position NOT IN (SELECT position FROM poison) AND "
                         + visible, params).fetchone()[0]
    con.execute(_INSERT_IDENTITY.replace("$link", f"'{LINK}'").replace("$unlink", f"'{UNLINK}'")
                .replace("$visible", visible), params)
    return int(loaded), poison


def _pseudonymise(con: duckdb.DuckDBPyConnection, pseudonyms: Pseudonymiser) -> None:
    values = con.execute(
        "SELECT DISTINCT kind, value FROM (SELECT 'phone' AS kind, phone AS value FROM parsed "
        "UNION ALL SELECT 'email', email FROM parsed "
        "UNION ALL SELECT 'anonymous_id', anonymous_id FROM parsed) WHERE value IS NOT NULL"
    ).fetchall()
    kinds = [k for k, _ in values]
    raw = [v for _, v in values]
    keys = [pseudonyms.key(k, v) for k, v in values]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE pseudonyms AS "
        "SELECT unnest($1) AS kind, unnest($2) AS value, unnest($3) AS key",
        [kinds, raw, keys],
    )
