"""Loading a batch of stored events into the DuckDB base tables, vectorised.

The recorder hands over the batch as JSON Lines built by the database; DuckDB's
JSON reader parses them into typed columns in one pass. Only the distinct phone,
email and anonymous-id values come back to Python, to be replaced by keyed
pseudonyms: no raw contact detail reaches the database file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb
import orjson
from eventsourcing.utils import get_topic

from journey.domain.values import PERSONAL_PROPERTIES
from journey.domain.events import CustomerErased, IdentityLinked, IdentityUnlinked, TouchRecorded
from journey.crypto.keys import KeyStore
from journey.crypto.sealer import PREFIX, key_id_of
from journey.crypto.pseudonym import Pseudonymiser
from journey.projections.schema import read_properties

__all__ = ["Poison", "load_batch"]

TOUCH = get_topic(TouchRecorded)
LINK = get_topic(IdentityLinked)
UNLINK = get_topic(IdentityUnlinked)
ERASED = get_topic(CustomerErased)
KNOWN_VERSIONS = {TOUCH: TouchRecorded.class_version, LINK: IdentityLinked.class_version,
                  UNLINK: IdentityUnlinked.class_version, ERASED: CustomerErased.class_version}

# The envelope is parsed by DuckDB's JSON reader straight into typed columns; the
# properties object (free-form for custom touches) stays JSON and its common fields
# are extracted in one pass.
_ENVELOPE = (
    "STRUCT(touch STRUCT(event_id VARCHAR, type VARCHAR, activity VARCHAR, channel VARCHAR, "
    "source VARCHAR, occurred_at VARCHAR, customer STRUCT(customer_id VARCHAR, phone VARCHAR, "
    "email VARCHAR, anonymous_id VARCHAR), properties JSON), recorded_at VARCHAR, class_version VARCHAR)"
)
_COLUMNS = "{'p': 'BIGINT', 't': 'VARCHAR', 's': '" + _ENVELOPE + "'}"
PROPERTY_FIELDS = [
    ("amount", "amount.amount"), ("amount_currency", "amount.currency"),
    ("total", "total.amount"), ("total_currency", "total.currency"),
    ("cost", "cost.amount"), ("cost_currency", "cost.currency"),
    ("doctor", "doctor"), ("to_doctor", "to_doctor"), ("administrator", "administrator"),
    ("branch", "branch"), ("booking_id", "booking_id"), ("visit_id", "visit_id"),
    ("campaign", "campaign"), ("direction", "direction"), ("purpose", "purpose"),
    ("answered", "answered"), ("outcome", "outcome"), ("status", "status"), ("rating", "rating"),
]
_PATHS = "[" + ", ".join(f"'$.{path}'" for _, path in PROPERTY_FIELDS) + "]"
# Free text and names never reach the analytics database (merge-patch nulls remove keys).
_PRIVATE = orjson.dumps(dict.fromkeys(PERSONAL_PROPERTIES)).decode()
# A sealed custom property (not declared analytic in the property policy) reaches
# analysts only as "present"; a sealed value is never a column's value.
# A patient's referral names the referring patient: that reaches analysts only as the
# pseudonym in ``referrer_key``, never as the clinic's id or a sealed value.
_PRIVATE_REFERRAL = orjson.dumps(dict.fromkeys((*PERSONAL_PROPERTIES, "referrer"))).decode()
_PRESENT = "regexp_replace(CAST(json_merge_patch(properties, CASE WHEN referrer IS NULL THEN '{private}' " \
    "ELSE '{referral}' END) AS VARCHAR), '\"$prefix[^\"]*\"', '\"present\"', 'g')".format(
        private=_PRIVATE, referral=_PRIVATE_REFERRAL)
_PROPERTY_COLUMNS = ",\n    ".join(
    f"CASE WHEN NOT starts_with(v[{i}], '$prefix') THEN v[{i}] END AS {name}"
    for i, (name, _) in enumerate(PROPERTY_FIELDS, start=1))

_STAGE = f"""
CREATE OR REPLACE TEMP TABLE parsed AS
SELECT position, topic,
    coalesce(TRY_CAST(class_version AS INTEGER), 1) AS class_version,
    TRY_CAST(recorded_at AS TIMESTAMPTZ) AS recorded_at,
    event_id, type, activity, channel, source, occurred_at,
    customer.customer_id AS patient_id, customer.phone AS phone, customer.email AS email,
    customer.anonymous_id AS anonymous_id, referrer,
    CASE WHEN starts_with(primary_id, '$prefix') THEN split_part(primary_id, ':', 2) END AS key_id,
    CAST({_PRESENT} AS JSON) AS properties,
    {_PROPERTY_COLUMNS}
FROM (
    SELECT p AS position, t AS topic, s.recorded_at AS recorded_at, s.class_version AS class_version,
        s.touch.event_id AS event_id, s.touch.type AS type, s.touch.activity AS activity,
        s.touch.channel AS channel, s.touch.source AS source, s.touch.occurred_at AS occurred_at,
        s.touch.customer AS customer, s.touch.properties AS properties,
        coalesce(s.touch.customer.customer_id, s.touch.customer.phone, s.touch.customer.email,
                 s.touch.customer.anonymous_id) AS primary_id,
        json_extract_string(s.touch.properties, {_PATHS}) AS v,
        CASE WHEN s.touch.type = 'referral' AND json_extract_string(s.touch.properties, '$.kind') = 'patient'
             THEN json_extract_string(s.touch.properties, '$.referrer') END AS referrer
    FROM read_json($path, format = 'newline_delimited', columns = {_COLUMNS}, ignore_errors = true)
    WHERE p IS NOT NULL  -- a line DuckDB could not read at all comes back empty
)
"""

_POISON = """
SELECT position, event_id, topic, CASE
    WHEN topic NOT IN ($topics) THEN 'unknown event class ' || topic
    WHEN class_version > ($versions)[topic] THEN
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

_INSERT_TOUCHES = f"""
INSERT INTO internal.touches
SELECT p.position, p.event_id, p.type, coalesce(p.activity, p.type), p.channel, p.source,
    CAST(p.occurred_at AS TIMESTAMPTZ), p.recorded_at, kc.key,
    kp.key, ke.key, ka.key,
    CAST(coalesce(p.amount, p.total, p.cost) AS DECIMAL(21, 6)),
    coalesce(p.amount_currency, p.total_currency, p.cost_currency),
    coalesce(p.doctor, p.to_doctor), p.administrator, p.branch, p.booking_id, p.visit_id,
    p.campaign, p.direction, p.purpose, TRY_CAST(p.answered AS BOOLEAN), p.outcome, p.status,
    TRY_CAST(p.rating AS INTEGER), p.properties, p.key_id, kr.key, {read_properties("p.properties", "p.type")}
FROM parsed p
LEFT JOIN pseudonyms kc ON kc.kind = 'customer_id' AND kc.value = p.patient_id
LEFT JOIN pseudonyms kp ON kp.kind = 'phone' AND kp.value = p.phone
LEFT JOIN pseudonyms ke ON ke.kind = 'email' AND ke.value = p.email
LEFT JOIN pseudonyms ka ON ka.kind = 'anonymous_id' AND ka.value = p.anonymous_id
LEFT JOIN pseudonyms kr ON kr.kind = 'customer_id' AND kr.value = p.referrer
WHERE p.topic = $topic AND p.position NOT IN (SELECT position FROM poison) AND $visible
"""

_INSERT_IDENTITY = """
INSERT INTO internal.identity_events
SELECT p.position, p.event_id, CASE WHEN p.topic = $link THEN 'link' ELSE 'unlink' END,
    p.recorded_at, kc.key, kp.key, ke.key, ka.key, p.key_id
FROM parsed p
LEFT JOIN pseudonyms kc ON kc.kind = 'customer_id' AND kc.value = p.patient_id
LEFT JOIN pseudonyms kp ON kp.kind = 'phone' AND kp.value = p.phone
LEFT JOIN pseudonyms ke ON ke.kind = 'email' AND ke.value = p.email
LEFT JOIN pseudonyms ka ON ka.kind = 'anonymous_id' AND ka.value = p.anonymous_id
WHERE p.topic IN ($link, $unlink) AND p.position NOT IN (SELECT position FROM poison) AND $visible
"""


# A forgotten customer (CustomerErased): the identifiers whose keys were destroyed
# leave every row; the rows whose primary key was destroyed keep only their
# non-personal facts (type, time, stage inputs, amount) and belong to no journey.
_ERASE = """
INSERT INTO internal.erasures
SELECT position, unnest(CAST(json_extract(properties, '$.key_ids') AS VARCHAR[]))
FROM parsed p WHERE p.topic = $erased AND p.position NOT IN (SELECT position FROM poison) AND $visible;
CREATE OR REPLACE TEMP TABLE gone AS
SELECT s.subject FROM internal.subjects s JOIN internal.erasures e USING (key_id) WHERE e.position >= $first;
UPDATE internal.touches SET patient_id = NULL WHERE patient_id IN (SELECT subject FROM gone);
UPDATE internal.touches SET phone_key = NULL WHERE phone_key IN (SELECT subject FROM gone);
UPDATE internal.touches SET email_key = NULL WHERE email_key IN (SELECT subject FROM gone);
UPDATE internal.touches SET anonymous_key = NULL WHERE anonymous_key IN (SELECT subject FROM gone);
UPDATE internal.touches SET referrer_key = NULL WHERE referrer_key IN (SELECT subject FROM gone);
DELETE FROM internal.identity_events WHERE key_id IN (SELECT key_id FROM internal.erasures);
UPDATE internal.touches SET event_id = 'erased', patient_id = NULL, phone_key = NULL, email_key = NULL,
    anonymous_key = NULL, booking_id = NULL, visit_id = NULL, properties = NULL, read_properties = NULL
WHERE key_id IN (SELECT key_id FROM internal.erasures)
  AND (position >= $first OR key_id IN (SELECT key_id FROM internal.erasures WHERE position >= $first))
  AND event_id <> 'erased';
DELETE FROM internal.subjects WHERE key_id IN (SELECT key_id FROM internal.erasures);
DROP TABLE gone;
"""

# A batch without erasures after some were made: only its own rows can carry a destroyed
# key (written by a writer whose key cache was a moment old); their identifiers already
# found no pseudonym, so anonymising them is all that is left. No scan of older rows.
_ERASE_LATE = """
DELETE FROM internal.identity_events
WHERE position >= $first AND key_id IN (SELECT key_id FROM internal.erasures);
UPDATE internal.touches SET event_id = 'erased', booking_id = NULL, visit_id = NULL, properties = NULL,
    read_properties = NULL
WHERE position >= $first AND key_id IN (SELECT key_id FROM internal.erasures);
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
    lines: str,
    pseudonyms: Pseudonymiser,
    *,
    keys: KeyStore | None = None,
    as_of: datetime | None = None,
) -> tuple[int, list[Poison]]:
    """Insert one batch into the base tables (the caller owns the transaction).

    ``lines`` are the recorder's JSON Lines for ``positions``. Returns how many
    events were loaded and the poison events found (not loaded). ``as_of`` loads
    only events recorded up to that moment. ``keys`` maps sealed identifiers to their
    pseudonyms (a destroyed key: no pseudonym, the customer is forgotten).
    """
    _stage(con, lines)
    unreadable = sorted(set(positions) - {p for (p,) in con.execute("SELECT position FROM parsed").fetchall()})
    topic_list = ", ".join(f"'{t}'" for t in KNOWN_VERSIONS)
    versions = "MAP {" + ", ".join(f"'{t}': {v}" for t, v in KNOWN_VERSIONS.items()) + "}"
    con.execute("CREATE OR REPLACE TEMP TABLE poison AS SELECT * FROM ("
                + _POISON.replace("$topics", topic_list).replace("$versions", versions)
                + ") WHERE reason IS NOT NULL")
    poison = _unreadable(positions, lines, unreadable)
    poison += [Poison(*row) for row in con.execute("SELECT * FROM poison ORDER BY position").fetchall()]
    poison.sort(key=lambda p: p.position)
    _pseudonymise(con, pseudonyms, keys)
    visible = "TRUE" if as_of is None else "p.recorded_at <= $as_of"
    params = {"as_of": as_of} if as_of is not None else {}
    con.execute(_INSERT_TOUCHES.replace("$topic", f"'{TOUCH}'").replace("$visible", visible), params)
    loaded = con.execute("SELECT count(*) FROM parsed p WHERE p.position NOT IN (SELECT position FROM poison) AND "
                         + visible, params).fetchone()[0]
    con.execute(_INSERT_IDENTITY.replace("$link", f"'{LINK}'").replace("$unlink", f"'{UNLINK}'")
                .replace("$visible", visible), params)
    fresh, earlier = con.execute(f"SELECT EXISTS (SELECT 1 FROM parsed WHERE topic = '{ERASED}'), "
                                 "EXISTS (SELECT 1 FROM internal.erasures)").fetchone()
    if fresh or earlier:
        sql = _ERASE if fresh else _ERASE_LATE
        con.execute(sql.replace("$erased", f"'{ERASED}'").replace("$visible", visible)
                    .replace("$first", str(int(positions[0]))), params)
    con.execute("DROP TABLE parsed; DROP TABLE pseudonyms; DROP TABLE poison")  # raw contacts gone
    return int(loaded), poison


def _unreadable(positions: Sequence[int], lines: str, missing: list[int]) -> list[Poison]:
    """Why the JSON reader could not read these lines (a rare path: plain Python)."""
    if not missing:
        return []
    index = {p: i for i, p in enumerate(positions)}
    text = lines.split("\n")
    found = []
    for position in missing:
        try:
            line = orjson.loads(text[index[position]])
        except orjson.JSONDecodeError:
            found.append(Poison(position, None, "?", "the stored state is not valid JSON"))
        else:
            found.append(Poison(position, None, str(line.get("t")), "the stored state is not an event's state"))
    return found


def _stage(con: duckdb.DuckDBPyConnection, lines: str) -> None:
    """Parse the batch's lines with DuckDB's JSON reader. The lines (raw contact
    details included) pass through a RAM file that is removed at once."""
    directory = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", dir=directory, encoding="utf-8") as file:
        file.write(lines)
        file.flush()
        con.execute(_STAGE.replace("$prefix", PREFIX).replace("$path", "'" + file.name.replace("'", "''") + "'"))


def _pseudonymise(con: duckdb.DuckDBPyConnection, pseudonyms: Pseudonymiser, keys: KeyStore | None) -> None:
    """Keyed pseudonyms for the batch's distinct identifiers. A sealed identifier's
    pseudonym comes from its key's row (no decryption); a plain one (stored before
    sealing, or without a key store) is hashed here."""
    values = con.execute(
        "SELECT DISTINCT kind, value FROM (SELECT 'customer_id' AS kind, patient_id AS value FROM parsed "
        "UNION ALL SELECT 'phone', phone FROM parsed "
        "UNION ALL SELECT 'email', email FROM parsed "
        "UNION ALL SELECT 'anonymous_id', anonymous_id FROM parsed "
        "UNION ALL SELECT 'customer_id', referrer FROM parsed) WHERE value IS NOT NULL"
    ).fetchall()
    sealed = {key_id for _, v in values if (key_id := key_id_of(v)) is not None}
    subjects = keys.subjects(sealed) if (sealed and keys is not None) else {}
    kinds, raw, found = [], [], []
    for kind, value in values:
        key_id = key_id_of(value)
        key = subjects.get(key_id) if key_id is not None else pseudonyms.key(kind, value)
        kinds.append(kind)
        raw.append(value)
        found.append(key)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE pseudonyms AS "
        "SELECT unnest($1) AS kind, unnest($2) AS value, unnest($3) AS key",
        [kinds, raw, found],
    )
    if subjects:
        con.execute(
            "INSERT INTO internal.subjects SELECT k, s FROM (SELECT unnest($1) AS k, unnest($2) AS s) "
            "WHERE k NOT IN (SELECT key_id FROM internal.subjects)",
            [list(subjects), list(subjects.values())],
        )
