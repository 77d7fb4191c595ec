"""Deriving the analyst tables from the base tables, in one transaction.

Everything that depends on order or identity (canonical customers, ``seq``,
stages, journeys, edges, variants) is recomputed from the append-only base, so a
late event lands in its place and an identity merge reaches back in time, exactly
as if the events had arrived in ``occurred_at`` order.
"""

from __future__ import annotations

import duckdb

from journey.domain.identity import IdentityResolver
from journey.projections.stages import stage_sql

__all__ = ["derive"]

_IDENTIFIERS = """
CREATE OR REPLACE TEMP TABLE observed AS
SELECT position, 'link' AS kind, patient_id, phone_key, email_key, anonymous_key FROM internal.touches
UNION ALL
SELECT position, kind, patient_id, phone_key, email_key, anonymous_key FROM internal.identity_events;
CREATE OR REPLACE TEMP TABLE observed_ids AS
SELECT position, kind, id_kind, id FROM observed
UNPIVOT (id FOR id_kind IN (patient_id AS 'customer_id', phone_key AS 'phone',
                            email_key AS 'email', anonymous_key AS 'anonymous_id'));
"""

# First-seen order; within one event the order the domain uses (customer_id first).
_NODES = """
SELECT id_kind, id FROM observed_ids GROUP BY id_kind, id
ORDER BY min(position), list_position(['customer_id', 'phone', 'email', 'anonymous_id'], id_kind)
"""

# A pair of identifiers is linked when the last event naming both of them links.
_EDGES = """
SELECT a.id_kind, a.id, b.id_kind, b.id
FROM observed_ids a JOIN observed_ids b
  ON a.position = b.position AND (a.id_kind, a.id) < (b.id_kind, b.id)
GROUP BY ALL
HAVING arg_max(a.kind, a.position) = 'link'
"""

_TOUCHPOINTS = f"""
CREATE OR REPLACE TABLE touchpoints AS
WITH named AS (
    SELECT t.*, list_filter([mp.canonical, me.canonical, ma.canonical], lambda x: x IS NOT NULL) AS names
    FROM internal.touches t
    LEFT JOIN internal.identity_map mp ON mp.id_kind = 'phone' AND mp.id = t.phone_key
    LEFT JOIN internal.identity_map me ON me.id_kind = 'email' AND me.id = t.email_key
    LEFT JOIN internal.identity_map ma ON ma.id_kind = 'anonymous_id' AND ma.id = t.anonymous_key
), resolved AS (
    SELECT *, list_sort(list_distinct(list_filter(names, lambda x: NOT (
        x LIKE 'ambiguous:%' OR x LIKE 'phone:%' OR x LIKE 'email:%' OR x LIKE 'anonymous_id:%'
    )))) AS known
    FROM named
), owned AS (
    SELECT * EXCLUDE (names, known), CASE
        WHEN patient_id IS NOT NULL THEN patient_id
        WHEN len(known) = 1 THEN known[1]
        WHEN len(known) > 1 THEN 'ambiguous:' || array_to_string(known, '|')
        ELSE names[1]
    END AS customer_id
    FROM resolved
), visits AS (
    SELECT *,
        CASE WHEN type = 'visit' THEN row_number() OVER v END AS visit_no,
        CASE WHEN type = 'visit' THEN lag(occurred_at) OVER v END AS prev_visit_at
    FROM owned
    WINDOW v AS (PARTITION BY customer_id, type = 'visit' ORDER BY occurred_at, position)
)
SELECT event_id, customer_id, type, activity, {stage_sql("visits")} AS stage, channel, source,
    occurred_at, recorded_at, position,
    CASE WHEN customer_id IS NOT NULL
         THEN row_number() OVER (PARTITION BY customer_id ORDER BY occurred_at, position) END AS seq,
    amount, currency, doctor, administrator, branch, booking_id, visit_id, campaign,
    direction, purpose, answered, outcome, status, rating, properties,
    patient_id IS NOT NULL AS identified
FROM visits
"""

_STEPS = """
CREATE OR REPLACE TEMP TABLE steps AS
SELECT customer_id, activity, occurred_at, seq,
    lead(activity) OVER w AS next_activity,
    (epoch_us(lead(occurred_at) OVER w) - epoch_us(occurred_at)) / 1e6 AS seconds
FROM touchpoints WHERE customer_id IS NOT NULL
WINDOW w AS (PARTITION BY customer_id ORDER BY seq)
"""

_EDGES_TABLE = """
CREATE OR REPLACE TABLE journey_edges AS
SELECT activity AS source, next_activity AS target, count(*) AS transitions,
    count(DISTINCT customer_id) AS customers, avg(seconds) AS mean_seconds,
    median(seconds) AS median_seconds, quantile_cont(seconds, 0.9) AS p90_seconds
FROM steps WHERE next_activity IS NOT NULL
GROUP BY ALL ORDER BY transitions DESC, source, target
"""

_NODES_TABLE = """
CREATE OR REPLACE TABLE journey_nodes AS
SELECT activity, count(*) AS events, count(DISTINCT customer_id) AS customers,
    count(*) FILTER (WHERE seq = 1) AS starts,
    count(*) FILTER (WHERE next_activity IS NULL) AS ends
FROM steps GROUP BY activity ORDER BY events DESC, activity
"""

_VARIANTS = """
CREATE OR REPLACE TABLE journey_variants AS
SELECT array_to_string(activities, ' > ') AS variant, activities, len(activities) AS length,
    count(*) AS customers
FROM (SELECT customer_id, list(activity ORDER BY seq) AS activities FROM steps GROUP BY customer_id)
GROUP BY activities ORDER BY customers DESC, variant
"""

_STAGE_TRANSITIONS = """
CREATE OR REPLACE TABLE stage_transitions AS
WITH staged AS (
    SELECT customer_id, stage, occurred_at, seq, lag(stage) OVER (PARTITION BY customer_id ORDER BY seq) AS before
    FROM touchpoints WHERE customer_id IS NOT NULL AND stage IS NOT NULL
), entered AS (
    SELECT customer_id, stage, occurred_at,
        lead(stage) OVER e AS next_stage,
        (epoch_us(lead(occurred_at) OVER e) - epoch_us(occurred_at)) / 1e6 AS seconds
    FROM staged WHERE before IS NULL OR before <> stage
    WINDOW e AS (PARTITION BY customer_id ORDER BY seq)
)
SELECT stage AS from_stage, next_stage AS to_stage, count(*) AS transitions,
    count(DISTINCT customer_id) AS customers, avg(seconds) AS mean_seconds,
    median(seconds) AS median_seconds
FROM entered WHERE next_stage IS NOT NULL
GROUP BY ALL ORDER BY transitions DESC, from_stage, to_stage
"""

_CUSTOMERS = """
CREATE OR REPLACE TABLE customers AS
SELECT customer_id,
    bool_or(identified) AS identified,
    customer_id LIKE 'ambiguous:%' AS ambiguous,
    min(occurred_at) AS first_touch_at, max(occurred_at) AS last_touch_at,
    arg_min(channel, seq) FILTER (WHERE channel IS NOT NULL) AS first_channel,
    arg_min(activity, seq) AS first_activity,
    arg_max(stage, seq) FILTER (WHERE stage IS NOT NULL) AS current_stage,
    count(*) AS touches,
    count(*) FILTER (WHERE type = 'visit') AS visits,
    min(occurred_at) FILTER (WHERE type = 'visit') AS first_visit_at,
    arg_min(doctor, seq) FILTER (WHERE type = 'visit') AS first_visit_doctor,
    coalesce(sum(amount) FILTER (WHERE type = 'payment'), 0) AS revenue,
    arg_max(currency, seq) FILTER (WHERE type = 'payment') AS currency,
    arg_max(TRY_CAST(properties->>'birth_year' AS INTEGER), seq) FILTER (WHERE type = 'profile') AS birth_year,
    arg_max(properties->>'sex', seq) FILTER (WHERE type = 'profile') AS sex,
    arg_max(properties->>'city', seq) FILTER (WHERE type = 'profile') AS city,
    arg_max(properties->>'district', seq) FILTER (WHERE type = 'profile') AS district,
    arg_max(properties->>'income', seq) FILTER (WHERE type = 'profile') AS income,
    arg_max(properties->>'social_status', seq) FILTER (WHERE type = 'profile') AS social_status,
    arg_max(properties->>'family', seq) FILTER (WHERE type = 'profile') AS family,
    arg_max(properties->>'education', seq) FILTER (WHERE type = 'profile') AS education,
    arg_max(properties->>'problem', seq) FILTER (WHERE type = 'profile') AS problem
FROM touchpoints WHERE customer_id IS NOT NULL
GROUP BY customer_id ORDER BY customer_id
"""


def derive(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute every analyst table from the base (the caller owns the transaction)."""
    con.execute(_IDENTIFIERS)
    _resolve_identities(con)
    con.execute(_TOUCHPOINTS)
    con.execute(_STEPS)
    for statement in (_EDGES_TABLE, _NODES_TABLE, _VARIANTS, _STAGE_TRANSITIONS, _CUSTOMERS):
        con.execute(statement)
    con.execute("DROP TABLE steps; DROP TABLE observed; DROP TABLE observed_ids")


def _resolve_identities(con: duckdb.DuckDBPyConnection) -> None:
    """The domain's resolver over DuckDB's distinct identifiers and active links."""
    resolver = IdentityResolver()
    resolver.add_nodes(con.execute(_NODES).fetchall())
    resolver.add_links(((a, b), (c, d)) for a, b, c, d in con.execute(_EDGES).fetchall())
    result = resolver.resolve()
    kinds, ids, names = [], [], []
    for (kind, value), name in result.canonical_of.items():
        kinds.append(kind)
        ids.append(value)
        names.append(name)
    con.execute("CREATE OR REPLACE TABLE internal.identity_map (id_kind VARCHAR, id VARCHAR, canonical VARCHAR)")
    con.execute(
        "INSERT INTO internal.identity_map SELECT unnest($1::VARCHAR[]), unnest($2::VARCHAR[]), unnest($3::VARCHAR[])",
        [kinds, ids, names],
    )
    con.execute("CREATE OR REPLACE TABLE identity_ambiguities (id_kind VARCHAR, id VARCHAR, candidates VARCHAR[])")
    con.execute(
        "INSERT INTO identity_ambiguities SELECT unnest($1::VARCHAR[]), unnest($2::VARCHAR[]), unnest($3::VARCHAR[][])",
        [[a.identifier[0] for a in result.ambiguities], [a.identifier[1] for a in result.ambiguities],
         [list(a.candidates) for a in result.ambiguities]],
    )
