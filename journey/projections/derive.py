"""Deriving the analyst tables from the base tables, in one transaction.

Everything that depends on order or identity (canonical customers, ``seq``,
stages, journeys, edges, variants) is recomputed from the append-only base, so a
late event lands in its place and an identity merge reaches back in time, exactly
as if the events had arrived in ``occurred_at`` order.
"""

from __future__ import annotations

import duckdb

from journey.domain.identity import IdentityResolver
from journey.projections.analysis import write_analysis_tables
from journey.projections.consent import derive_consent
from journey.projections.stage_model import StageModel, compile_stages, default_stage_model

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

# Every identifier, numbered in first-seen order; within one event in the order the
# domain uses (customer_id first). The number also names a group without a customer_id.
_NODES = """
CREATE OR REPLACE TEMP TABLE nodes AS
SELECT row_number() OVER (ORDER BY first, priority) AS n, id_kind, id
FROM (SELECT id_kind, id, min(position) AS first,
             list_position(['customer_id', 'phone', 'email', 'anonymous_id'], id_kind) AS priority
      FROM observed_ids GROUP BY id_kind, id)
"""

# A pair of identifiers is linked when the last event naming both of them links.
_EDGES = """
CREATE OR REPLACE TEMP TABLE edges AS
WITH pairs AS (
    SELECT a.id_kind AS ak, a.id AS ai, b.id_kind AS bk, b.id AS bi
    FROM observed_ids a JOIN observed_ids b
      ON a.position = b.position AND (a.id_kind, a.id) < (b.id_kind, b.id)
    GROUP BY ALL
    HAVING arg_max(a.kind, a.position) = 'link'
)
SELECT na.n AS a, nb.n AS b FROM pairs
JOIN nodes na ON na.id_kind = pairs.ak AND na.id = pairs.ai
JOIN nodes nb ON nb.id_kind = pairs.bk AND nb.id = pairs.bi
"""

# Connected components by label propagation: each node takes the smallest label among
# itself and its neighbours, until nothing changes (identity graphs are shallow).
_PROPAGATE = """
CREATE OR REPLACE TEMP TABLE next_labels AS
SELECT l.n, least(l.label, coalesce(min(m.label), l.label)) AS label
FROM labels l
LEFT JOIN (SELECT a AS n, b AS other FROM edges UNION ALL SELECT b, a FROM edges) e ON e.n = l.n
LEFT JOIN labels m ON m.n = e.other
GROUP BY l.n, l.label
"""

_NAMES = """
CREATE OR REPLACE TEMP TABLE components AS
SELECT label, count(*) FILTER (WHERE id_kind = 'customer_id') AS patients,
       any_value(id) FILTER (WHERE id_kind = 'customer_id') AS patient,
       arg_min(id_kind || ':' || id, n) AS first_seen
FROM labels JOIN nodes USING (n) GROUP BY label;
CREATE OR REPLACE TABLE internal.identity_map (id_kind VARCHAR, id VARCHAR, canonical VARCHAR);
INSERT INTO internal.identity_map
SELECT nodes.id_kind, nodes.id, CASE WHEN c.patients = 1 THEN c.patient ELSE c.first_seen END
FROM nodes JOIN labels USING (n) JOIN components c USING (label)
WHERE c.patients <= 1;
"""

_TOUCHPOINTS = """
CREATE OR REPLACE TABLE touchpoints AS
WITH named AS (
    SELECT t.*, list_filter([mp.canonical, me.canonical, ma.canonical], lambda x: x IS NOT NULL) AS names
    FROM (
        SELECT * FROM internal.touches
        UNION ALL BY NAME  -- a referred friend is the referring patient's act too
        SELECT position, 'referred:' || event_id AS event_id, 'referred_friend' AS type,
            'referred_friend' AS activity, occurred_at, recorded_at, referrer_key AS patient_id
        FROM internal.touches WHERE referrer_key IS NOT NULL
    ) t
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
        row_number() OVER v AS type_no, lag(occurred_at) OVER v AS prev_type_at
    FROM owned
    WINDOW v AS (PARTITION BY customer_id, type ORDER BY occurred_at, position)
)
SELECT event_id, customer_id, type, activity, $stage_case AS stage, channel, source,
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


_CUSTOMER_IDENTIFIERS = """
CREATE OR REPLACE TABLE customer_identifiers AS
SELECT canonical AS customer_id, id_kind, id, false AS shared FROM internal.identity_map
WHERE canonical NOT LIKE 'ambiguous:%'
UNION ALL
SELECT unnest(candidates), id_kind, id, true FROM identity_ambiguities
ORDER BY ALL
"""


def derive(con: duckdb.DuckDBPyConnection, stage_model: StageModel | None = None) -> None:
    """Recompute every analyst table from the base (the caller owns the transaction)."""
    con.execute(_IDENTIFIERS)
    _resolve_identities(con)
    model = stage_model or default_stage_model()
    stages = compile_stages(model, "visits")
    con.execute(_TOUCHPOINTS.replace("$stage_case", stages.sql), stages.parameters)
    con.execute(_STEPS)
    for statement in (_EDGES_TABLE, _NODES_TABLE, _VARIANTS, _STAGE_TRANSITIONS, _CUSTOMERS):
        con.execute(statement)
    con.execute(_CUSTOMER_IDENTIFIERS)
    derive_consent(con)
    for table in ("steps", "observed", "observed_ids", "nodes", "edges", "labels", "components"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    write_analysis_tables(con, model)


def _resolve_identities(con: duckdb.DuckDBPyConnection) -> None:
    """Connected components in SQL; groups with at most one patient are named there.
    Groups holding several patients (a shared phone) go to the domain's resolver,
    which gives each identifier its nearest patient or marks it ambiguous."""
    con.execute(_NODES)
    con.execute(_EDGES)
    con.execute("CREATE OR REPLACE TEMP TABLE labels AS SELECT n, n AS label FROM nodes")
    while True:
        con.execute(_PROPAGATE)
        changed = con.execute(
            "SELECT count(*) FROM next_labels JOIN labels USING (n) WHERE next_labels.label <> labels.label"
        ).fetchone()[0]
        con.execute("DROP TABLE labels; ALTER TABLE next_labels RENAME TO labels")
        if not changed:
            break
    con.execute(_NAMES)
    shared = "(SELECT label FROM components WHERE patients > 1)"
    resolver = IdentityResolver()
    resolver.add_nodes(con.execute(
        f"SELECT id_kind, id FROM nodes JOIN labels USING (n) WHERE label IN {shared} ORDER BY n").fetchall())
    resolver.add_links(((a, b), (c, d)) for a, b, c, d in con.execute(
        "SELECT na.id_kind, na.id, nb.id_kind, nb.id FROM edges JOIN nodes na ON na.n = edges.a "
        f"JOIN nodes nb ON nb.n = edges.b JOIN labels l ON l.n = edges.a WHERE l.label IN {shared}"
    ).fetchall())
    result = resolver.resolve()
    con.execute(
        "INSERT INTO internal.identity_map SELECT unnest($1::VARCHAR[]), unnest($2::VARCHAR[]), unnest($3::VARCHAR[])",
        [[k for k, _ in result.canonical_of], [v for _, v in result.canonical_of],
         list(result.canonical_of.values())],
    )
    con.execute("CREATE OR REPLACE TABLE identity_ambiguities (id_kind VARCHAR, id VARCHAR, candidates VARCHAR[])")
    con.execute(
        "INSERT INTO identity_ambiguities SELECT unnest($1::VARCHAR[]), unnest($2::VARCHAR[]), unnest($3::VARCHAR[][])",
        [[a.identifier[0] for a in result.ambiguities], [a.identifier[1] for a in result.ambiguities],
         [list(a.candidates) for a in result.ambiguities]],
    )
