"""Deriving the analyst tables from the base tables, in one transaction.

Everything that depends on order or identity (canonical customers, ``seq``, stages,
journeys, edges, variants) comes from the append-only base, so a late event lands in
its place and an identity merge reaches back in time, exactly as if the events had
arrived in ``occurred_at`` order.

A derive is *full* (every table from the whole base) or *incremental* after a
position: only what the events after it can change is derived again.

1. The identifiers those events name, and every identifier of the identity components
   they belong to, are resolved again (components are closed: no link leaves one, so
   resolving them alone gives what resolving everything gives).
2. The touches naming any of those identifiers, or stored after the position, may have
   a new owner (found in one scan of the identifier columns, ``named_touches``): their
   customers, before and after, are *dirty*, and every touch of a dirty customer is
   derived again (``seq``, stages, steps).
3. The per-customer tables (``touchpoints``, ``customers``, ``customer_identifiers``,
   consent, steps, paths, stage entries, the points of failure's stage outcomes) replace
   the dirty customers' rows, read from one table of every touch of theirs
   (``changed_touchpoints``); the aggregates (edges, nodes, variants, stage transitions,
   the failure tables) come from the per-customer rows: the distinct-customer counts as
   running counts (the dirty customers' old contribution taken away, their new one
   added), the rest summed again.

A batch holding an erasure, a new stage model or a file whose kept tables have another
layout is derived in full. ``internal.derive_changes`` records which customers each derive
changed, for the publish. ``tests/projections/test_properties.py`` proves incremental =
rebuild table by table; docs/design.md ("Live projection") has the design and figures.
"""

from __future__ import annotations

import hashlib

import duckdb

from journey.domain.identity import IdentityResolver
from journey.projections.analysis import write_analysis_tables
from journey.projections.consent import derive_consent
from journey.projections.failure import KEPT as FAILURE_KEPT, PER_CUSTOMER as FAILURE_TABLES
from journey.projections.kept import RunningCount, customers_in, replace_customers
from journey.projections.metrics import PARTS as METRIC_PARTS, TYPES as METRIC_TYPES, remember_people
from journey.projections.stage_model import StageModel, compile_stages, default_stage_model

__all__ = ["CHANGES_DDL", "KEPT", "WRITTEN", "LOGS", "PER_CUSTOMER", "ROW_KEY", "RUNNING", "TOUCHPOINT_LOG", "VARIANT",
           "VARIANT_LOG", "derive", "derive_number", "model_fingerprint"]

_ID_COLUMNS = (("customer_id", "patient_id"), ("phone", "phone_key"), ("email", "email_key"),
               ("anonymous_id", "anonymous_key"))
_UNPIVOT = ("UNPIVOT (id FOR id_kind IN (patient_id AS 'customer_id', phone_key AS 'phone', "
            "email_key AS 'email', anonymous_key AS 'anonymous_id'))")

# The identifiers named after the position. A touch naming one identifier already known
# changes no identity component (it adds no node and links no pair), so only the others
# (named with another identifier, by an identity event, or new) are *affected*, with every
# identifier of their components: those components are resolved again and the touches
# naming them looked at again. The touches stored after the position are looked at again
# in any case (their owners, by the kept identity map).
_AFFECTED = f"""
CREATE OR REPLACE TEMP TABLE fresh_ids AS
SELECT id_kind, id, bool_or(linking) AS linking FROM (
    SELECT patient_id, phone_key, email_key, anonymous_key,
        (patient_id IS NOT NULL)::INTEGER + (phone_key IS NOT NULL)::INTEGER + (email_key IS NOT NULL)::INTEGER
            + (anonymous_key IS NOT NULL)::INTEGER > 1 AS linking
    FROM internal.touches WHERE position > $since
    UNION ALL
    SELECT patient_id, phone_key, email_key, anonymous_key, true FROM internal.identity_events WHERE position > $since
) {_UNPIVOT} GROUP BY id_kind, id;
CREATE OR REPLACE TEMP TABLE known_ids AS  -- a semi join hashes the few fresh identifiers, not every node
SELECT id_kind, id FROM internal.identity_nodes SEMI JOIN fresh_ids USING (id_kind, id);
CREATE OR REPLACE TEMP TABLE structural_ids AS
SELECT id_kind, id FROM fresh_ids WHERE linking
UNION
SELECT id_kind, id FROM fresh_ids ANTI JOIN known_ids USING (id_kind, id);
CREATE OR REPLACE TEMP TABLE affected_ids AS
SELECT id_kind, id FROM structural_ids
UNION
SELECT n.id_kind, n.id FROM internal.identity_nodes n
WHERE n.component IN (SELECT c.component FROM internal.identity_nodes c JOIN structural_ids f USING (id_kind, id));
DROP TABLE fresh_ids; DROP TABLE known_ids; DROP TABLE structural_ids;
"""


def _naming(alias: str = "") -> str:
    """A row names an affected identifier (the SQL of the incremental scope)."""
    prefix = f"{alias}." if alias else ""
    return "(" + " OR ".join(
        f"{prefix}{column} IN (SELECT id FROM affected_ids WHERE id_kind = '{kind}')"
        for kind, column in _ID_COLUMNS) + ")"


# The touches an incremental derive looks at again, identifiers only: stored after the
# position, naming an affected identifier, or crediting an affected patient (a referral).
# One scan of these few columns; identity resolution and the dirty rows read this small
# table, never every touch with its owner resolved (the filter does not pass the joins).
_NAMED_TOUCHES = """
CREATE OR REPLACE TEMP TABLE named_touches AS
SELECT position, patient_id, phone_key, email_key, anonymous_key, referrer_key FROM internal.touches t
WHERE t.position > $since"""
_NAMING_TOUCHES = "".join(
    f"\nUNION\nSELECT position, patient_id, phone_key, email_key, anonymous_key, referrer_key FROM internal.touches "
    f"SEMI JOIN (SELECT id FROM affected_ids WHERE id_kind = '{kind}') ON {column} = id"
    for kind, column in (*_ID_COLUMNS, ("customer_id", "referrer_key")))
"""The touches naming an affected identifier too, one semi join per identifier column (the
same rows as one scan with ``OR column IN (...)`` per column: 48-61 against 84-113 ms at 1M
touches); without one, the touches stored after the position alone (zone maps skip the rest
of the table)."""

# The same rows as ``touch_source`` (a referral's credit as a row of the referring
# patient's), with the columns owning a row needs.
_NAMED_SOURCE = """
CREATE OR REPLACE TEMP VIEW named_source AS
SELECT position, false AS credit, patient_id, phone_key, email_key, anonymous_key FROM named_touches
UNION ALL
SELECT position, true, referrer_key, NULL, NULL, NULL FROM named_touches WHERE referrer_key IS NOT NULL
"""


_IDENTIFIERS = f"""
CREATE OR REPLACE TEMP TABLE observed AS
SELECT position, 'link' AS kind, patient_id, phone_key, email_key, anonymous_key FROM $touches WHERE $scope
UNION ALL
SELECT position, kind, patient_id, phone_key, email_key, anonymous_key FROM internal.identity_events WHERE $scope;
CREATE OR REPLACE TEMP TABLE observed_ids AS
SELECT position, kind, id_kind, id FROM observed {_UNPIVOT} $semi;
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

# A component is named by its first-seen identifier; with one patient, by the patient.
_NAMES = """
CREATE OR REPLACE TEMP TABLE components AS
SELECT label, count(*) FILTER (WHERE id_kind = 'customer_id') AS patients,
       any_value(id) FILTER (WHERE id_kind = 'customer_id') AS patient,
       arg_min(id_kind || ':' || id, n) AS first_seen
FROM labels JOIN nodes USING (n) GROUP BY label;
CREATE OR REPLACE TEMP TABLE new_nodes AS
SELECT nodes.id_kind, nodes.id, c.first_seen AS component FROM nodes JOIN labels USING (n) JOIN components c USING (label);
CREATE OR REPLACE TEMP TABLE new_map AS
SELECT nodes.id_kind, nodes.id, CASE WHEN c.patients = 1 THEN c.patient ELSE c.first_seen END AS canonical
FROM nodes JOIN labels USING (n) JOIN components c USING (label)
WHERE c.patients <= 1;
"""

# The touches, and a referred friend as the referring patient's act too (``credit``).
_SOURCE = """
CREATE OR REPLACE TEMP VIEW touch_source AS
SELECT * EXCLUDE (read_properties), false AS credit FROM internal.touches
UNION ALL BY NAME
SELECT position, 'referred:' || event_id AS event_id, 'referred_friend' AS type,
    'referred_friend' AS activity, occurred_at, recorded_at, referrer_key AS patient_id, true AS credit
FROM internal.touches WHERE referrer_key IS NOT NULL
"""

# ``touch_source`` restricted to the positions derived again by a semi join on the plain
# column, before the union and the row key (a semi join on the key computed over the
# union read every column of every touch into the join: 0.18 s against 0.14 s at 1M).
# Its ``properties`` are only those the derive reads (``read_properties``): the rows it
# writes take their whole properties again (``rows_changed``).
_AGAIN_SOURCE = _SOURCE.replace("* EXCLUDE (read_properties)", "* EXCLUDE (properties, read_properties), "
                                "read_properties AS properties").replace("touch_source", "again_source").replace(
    "FROM internal.touches", "FROM internal.touches SEMI JOIN again_positions USING (position)").replace(
    "CREATE OR REPLACE TEMP VIEW", "CREATE OR REPLACE TEMP TABLE again_positions AS "
    "SELECT DISTINCT row_key // 2 AS position FROM rows_again;\nCREATE OR REPLACE TEMP VIEW")

# The identity map's rows for the identifiers of ``$source``'s rows that name no patient (the
# only rows whose owner the map decides): the rows a batch hits join these few map rows, not
# the whole map three times (three hash tables of ~200,000 identifiers at 1M touches; the
# hit rows' owners took 41.7-46.1 ms at 1M; now the map 15-16 ms and the owners under
# ~12 ms, not timed more closely). The dirty customers' touches are
# joined to the whole map: finding their identifiers first reads their scattered rows once
# more (35 ms, no gain).
_OWNER_MAP = """
CREATE OR REPLACE TEMP TABLE owner_map AS
SELECT id_kind, id, canonical FROM internal.identity_map SEMI JOIN (
    SELECT unnest(['phone', 'email', 'anonymous_id']) AS id_kind, unnest([phone_key, email_key, anonymous_key]) AS id
    FROM $source WHERE patient_id IS NULL
) USING (id_kind, id)
"""

# Whose touch it is: the patient named, else the one customer its identifiers resolve to.
_OWNED = """
named AS (
    SELECT t.*, list_filter([mp.canonical, me.canonical, ma.canonical], lambda x: x IS NOT NULL) AS names
    FROM $source t
    LEFT JOIN $map mp ON mp.id_kind = 'phone' AND mp.id = t.phone_key
    LEFT JOIN $map me ON me.id_kind = 'email' AND me.id = t.email_key
    LEFT JOIN $map ma ON ma.id_kind = 'anonymous_id' AND ma.id = t.anonymous_key
    WHERE $rows
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
)"""

ROW_KEY = "(position * 2 + (type = 'referred_friend')::INTEGER)"
"""A ``touchpoints`` row's key: its touch's position, and whether it is a referral's credit
to the referring patient (a second row of the same touch)."""

# The rows whose owner may have changed (named after the position, or naming an
# affected identifier), and the customers they belonged to and belong to now.
# A row naming a patient is the patient's: the identity map is joined (three scans of it) only
# for the others, often none in a follower's batch (0.02 s against 0.005 s for 600 rows).
_DIRTY = f"""
CREATE OR REPLACE TEMP TABLE hit_rows AS
SELECT * FROM named_source t WHERE t.position > $since OR {_naming("t")};
{_OWNER_MAP.replace("$source", "hit_rows")};
CREATE OR REPLACE TEMP TABLE hit AS
SELECT position, credit, patient_id AS customer_id FROM hit_rows WHERE patient_id IS NOT NULL
UNION ALL
(WITH {_OWNED.replace("$source", "hit_rows").replace("$rows", "t.patient_id IS NULL").replace("$map", "owner_map")}
 SELECT position, credit, customer_id FROM owned);
DROP TABLE hit_rows;
CREATE OR REPLACE TEMP TABLE dirty AS
SELECT customer_id FROM hit
UNION
SELECT tp.customer_id FROM touchpoints tp JOIN hit h
  ON h.position = tp.position AND h.credit = (tp.type = 'referred_friend');
"""

# Every row of the dirty customers (``$mine``: ``customers_in(dirty)``), kept or hit.
_ROWS_AGAIN = f"""
CREATE OR REPLACE TEMP TABLE rows_before AS  -- what a derive computes in them (the changes compare it)
SELECT {ROW_KEY} AS row_key, customer_id, stage, seq, identified FROM touchpoints WHERE $mine;
CREATE OR REPLACE TEMP TABLE rows_again AS  -- ROW_KEY; a hit row's credit is the referral's row
SELECT position * 2 + credit::INTEGER AS row_key FROM hit
UNION
SELECT row_key FROM rows_before;
DROP TABLE hit;
"""

# The dirty customers' touchpoints derived again against the rows kept for them: a row is
# rewritten only when it is new or what a derive computes in it (owner, stage, seq,
# identified) changed; its other columns are its touch's, which only an erasure changes
# (and an erasure derives in full). A touch appended to a journey rewrites its own row,
# not the journey's: the rows, and the working file's and the slots' logs, that a batch
# writes were ~18 per dirty customer at 1M touches.
_TOUCHPOINT_CHANGES = f"""
CREATE OR REPLACE TEMP TABLE rows_after AS
SELECT {ROW_KEY} AS row_key, customer_id, stage, seq, identified FROM changed_touchpoints;
CREATE OR REPLACE TEMP TABLE rows_gone AS  -- changed, or no longer derived
SELECT row_key FROM (SELECT * FROM rows_before EXCEPT SELECT * FROM rows_after);
CREATE OR REPLACE TEMP TABLE rows_changed AS  -- new, or changed, with their whole properties
WITH changed AS (
    SELECT * FROM changed_touchpoints
    WHERE {ROW_KEY} IN (SELECT row_key FROM (SELECT * FROM rows_after EXCEPT SELECT * FROM rows_before))
)
SELECT c.* REPLACE (CASE WHEN c.type <> 'referred_friend' THEN t.properties END AS properties)
FROM changed c JOIN internal.touches t ON t.position = c.position;
DROP TABLE rows_before; DROP TABLE rows_after;
"""

# The windows number narrow rows (the row, its owner, type and time) joined back to the
# touch: over whole rows they sorted every column twice (1.39 against 1.77 s for the
# 1M-touch clinic's full derive; 87 against 94 ms for 1,000 customers' rows).
_TOUCHPOINTS = f"""
WITH {_OWNED.replace("$source", "touch_source")}, numbered AS (
    SELECT position, credit, row_number() OVER v AS type_no, lag(occurred_at) OVER v AS prev_type_at,
        CASE WHEN customer_id IS NOT NULL
             THEN row_number() OVER (PARTITION BY customer_id ORDER BY occurred_at, position, credit) END AS seq
    FROM (SELECT position, credit, customer_id, type, occurred_at FROM owned)
    WINDOW v AS (PARTITION BY customer_id, type ORDER BY occurred_at, position, credit)
), visits AS (
    SELECT * FROM owned JOIN numbered USING (position, credit)
)
SELECT event_id, customer_id, type, activity, $stage_case AS stage, channel, source,
    occurred_at, recorded_at, position, seq,
    amount, currency, doctor, administrator, branch, booking_id, visit_id, campaign,
    direction, purpose, answered, outcome, status, rating, properties,
    patient_id IS NOT NULL AS identified
FROM visits
"""

# Per customer: each touch and the next (the journey graph's steps), the journey's
# variant, and each entry into a stage with the next stage entered.
_STEPS = """
SELECT customer_id, activity, occurred_at, seq,
    lead(activity) OVER w AS next_activity,
    (epoch_us(lead(occurred_at) OVER w) - epoch_us(occurred_at)) / 1e6 AS seconds
FROM $touches WHERE customer_id IS NOT NULL
WINDOW w AS (PARTITION BY customer_id ORDER BY seq)
"""

_PATHS = """
SELECT customer_id, list(activity ORDER BY seq) AS activities
FROM $steps GROUP BY customer_id
"""

_STAGE_ENTRIES = """
WITH staged AS (
    SELECT customer_id, stage, occurred_at, seq, lag(stage) OVER (PARTITION BY customer_id ORDER BY seq) AS before
    FROM $touches WHERE customer_id IS NOT NULL AND stage IS NOT NULL
)
SELECT customer_id, stage, occurred_at,
    lead(stage) OVER e AS next_stage,
    (epoch_us(lead(occurred_at) OVER e) - epoch_us(occurred_at)) / 1e6 AS seconds
FROM staged WHERE before IS NULL OR before <> stage
WINDOW e AS (PARTITION BY customer_id ORDER BY seq)
"""

# A profile field of the customer's latest profile. The JSON is read inside a CASE on the
# type: an aggregate's FILTER drops the other rows only after its argument is computed, and
# parsing every touch's properties was half of this table's cost.
_PROFILE_FIELDS = ("sex", "city", "district", "income", "social_status", "family", "education", "problem")


def _profile(field: str, cast: str | None = None) -> str:
    value = f"CASE WHEN type = 'profile' THEN properties->>'{field}' END"
    value = f"TRY_CAST({value} AS {cast})" if cast else value
    return f"arg_max({value}, seq) FILTER (WHERE type = 'profile') AS {field}"


_CUSTOMERS = f"""
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
    {_profile("birth_year", "INTEGER")},
    {", ".join(_profile(field) for field in _PROFILE_FIELDS)}
FROM $touches WHERE customer_id IS NOT NULL
GROUP BY customer_id
"""


# The aggregates, from the per-customer rows. The distinct-customer counts are running
# counts kept between derives (``RUNNING``); the rest is summed again (medians do not add
# up; a sum is a scan, the distinct counts were most of the time). The variants are
# counted again too: as a running count keyed by the activity list, keeping it cost more
# than counting (grouping and rewriting lists).
RUNNING = (
    RunningCount("internal.edge_customers", "internal.steps", "activity AS source, next_activity AS target",
                 "next_activity IS NOT NULL", "count(DISTINCT customer_id)"),
    RunningCount("internal.node_customers", "internal.steps", "activity", "TRUE", "count(DISTINCT customer_id)"),
    RunningCount("internal.transition_customers", "internal.stage_entries", "stage AS from_stage, next_stage AS to_stage",
                 "next_stage IS NOT NULL", "count(DISTINCT customer_id)"),
)

_EDGES_TABLE = """
CREATE OR REPLACE TABLE journey_edges AS
WITH sums AS (
    SELECT activity AS source, next_activity AS target, count(*) AS transitions, avg(seconds) AS mean_seconds,
        median(seconds) AS median_seconds, quantile_cont(seconds, 0.9) AS p90_seconds
    FROM internal.steps WHERE next_activity IS NOT NULL GROUP BY ALL
)
SELECT s.source, s.target, s.transitions, k.n AS customers, s.mean_seconds, s.median_seconds, s.p90_seconds
FROM sums s JOIN internal.edge_customers k USING (source, target)
ORDER BY transitions DESC, source, target
"""

_NODES_TABLE = """
CREATE OR REPLACE TABLE journey_nodes AS
WITH sums AS (
    SELECT activity, count(*) AS events, count(*) FILTER (WHERE seq = 1) AS starts,
        count(*) FILTER (WHERE next_activity IS NULL) AS ends
    FROM internal.steps GROUP BY activity
)
SELECT s.activity, s.events, k.n AS customers, s.starts, s.ends
FROM sums s JOIN internal.node_customers k USING (activity) ORDER BY events DESC, activity
"""

VARIANT = "array_to_string(activities, ' > ')"
"""A journey variant's name, from its activities (``journey_variants.variant``)."""

_VARIANTS = f"""
CREATE OR REPLACE TABLE journey_variants AS
SELECT {VARIANT} AS variant, activities, len(activities) AS length,
    count(*) AS customers
FROM internal.paths GROUP BY activities ORDER BY customers DESC, variant
"""

# An incremental derive keeps ``journey_variants`` in place: the dirty customers' paths
# before (counted -1) and after (+1), summed per activity list, change only the variants
# whose count moved (grouping all 133k paths again cost ~0.13 s at 1M touches). Those
# variants go to the variant log for the publish. A slot's and the working file's
# variants come in no particular order (readers order them, journey/maps/graph.py).
_VARIANT_DELTA = """
CREATE OR REPLACE TEMP TABLE variant_delta AS
SELECT activities, -count(*) AS n FROM paths_before GROUP BY activities
UNION ALL
SELECT activities, count(*) FROM paths_after GROUP BY activities
"""
_VARIANTS_IN_PLACE = (
    "CREATE OR REPLACE TEMP TABLE variant_change AS SELECT activities, sum(n) AS n FROM variant_delta "
    "GROUP BY activities HAVING sum(n) <> 0",
    "UPDATE journey_variants v SET customers = v.customers + c.n FROM variant_change c WHERE v.activities = c.activities",
    f"INSERT INTO journey_variants SELECT {VARIANT}, activities, len(activities), n FROM variant_change c "
    "WHERE NOT EXISTS (SELECT 1 FROM journey_variants v WHERE v.activities = c.activities)",
    "DELETE FROM journey_variants WHERE customers = 0",
    f"INSERT INTO $log SELECT DISTINCT $number, {VARIANT} FROM variant_change",
    "DROP TABLE variant_delta; DROP TABLE variant_change",
)

_STAGE_TRANSITIONS = """
CREATE OR REPLACE TABLE stage_transitions AS
WITH sums AS (
    SELECT stage AS from_stage, next_stage AS to_stage, count(*) AS transitions, avg(seconds) AS mean_seconds,
        median(seconds) AS median_seconds
    FROM internal.stage_entries WHERE next_stage IS NOT NULL GROUP BY ALL
)
SELECT s.from_stage, s.to_stage, s.transitions, k.n AS customers, s.mean_seconds, s.median_seconds
FROM sums s JOIN internal.transition_customers k USING (from_stage, to_stage)
ORDER BY transitions DESC, from_stage, to_stage
"""

# Per identifier (only the affected identifiers' rows change).
_CUSTOMER_IDENTIFIERS = """
SELECT canonical AS customer_id, id_kind, id, false AS shared FROM $map
WHERE canonical NOT LIKE 'ambiguous:%'
UNION ALL
SELECT unnest(candidates), id_kind, id, true FROM $ambiguities
ORDER BY ALL
"""

TOUCHPOINT_LOG = ("internal.touchpoint_log", "internal.touchpoint_gone")
"""What each incremental derive changed in ``touchpoints``: the rows it wrote, new or
changed (``touchpoint_log``: derive and the row), and the keys of the rows it removed or
replaced (``touchpoint_gone``: derive, row_key, see ``ROW_KEY``). A publish replaces the
rows of every key logged since the slot's derive by each key's last written row (none
when the key's last entry is a removal) instead of scanning every touch; it prunes what
no slot needs, as ``derive_changes``. A full derive empties both (the publish then copies
whole)."""
VARIANT_LOG = "internal.variant_log"
"""The journey variants each incremental derive changed the count of (derive, variant):
those of the dirty customers' variants before and after whose count moved. A publish replaces those rows of
``journey_variants`` only (the other variants' counts did not change), so a slot's
variants come in no particular order; pruned and emptied as the touchpoint log."""
LOGS = (*TOUCHPOINT_LOG, VARIANT_LOG)
"""The logs of what each derive changed (a ``derive`` column each), for the publish."""


PER_CUSTOMER = ("internal.steps", "internal.paths", "internal.stage_entries", "customers", *FAILURE_TABLES,
                METRIC_PARTS)
"""The per-customer tables an incremental derive keeps (``touchpoints`` aside)."""
KEPT = (*PER_CUSTOMER, *(running.table for running in RUNNING), "touchpoints", "journey_variants", "customer_identifiers",
        "consent_state", "consent_violations", "identity_ambiguities", "internal.identity_map",
        "internal.identity_nodes", *FAILURE_KEPT, *LOGS)
"""Every table an incremental derive updates in place: all must exist, else a full derive."""

_KEPT_ROWS = {"internal.steps": "steps", "internal.paths": "paths", "internal.stage_entries": "stage_entries"}
"""The per-customer tables whose replaced rows an incremental derive keeps while it runs, and
the prefix of the temporary tables holding them (``kept.replace_customers``)."""

_TEMPORARY = (*(f"{name}_{when}" for name in _KEPT_ROWS.values() for when in ("before", "after")),
              "observed", "observed_ids", "nodes", "edges", "labels", "components", "new_nodes", "new_map",
              "new_ambiguities", "affected_ids", "named_touches", "dirty", "rows_again", "changed_touchpoints",
              "new_identifiers", "identifier_owners", "again_positions", "rows_changed", "rows_gone", "owner_map")

WRITTEN = "written:"
"""``internal.meta`` keys ``written:TABLE``: the derive that last wrote an analysis table an
incremental derive may keep (the failure tables, ``clinic_metrics``: kept when nothing they
read changed), so a publish copies it only into a slot published before that derive."""

CHANGES_DDL = ("CREATE TABLE IF NOT EXISTS internal.derive_changes "
               "(derive BIGINT NOT NULL, customer_id VARCHAR, every BOOLEAN NOT NULL)")
"""Which customers each derive (numbered in ``internal.meta`` ``derives``) changed
(``every``: a full derive): what a publish copies."""


def _log_touchpoints(con: duckdb.DuckDBPyConnection, number: int, full: bool) -> None:
    if full:
        con.execute(f"CREATE OR REPLACE TABLE {TOUCHPOINT_LOG[0]} AS "
                    "SELECT 0::BIGINT AS derive, * FROM touchpoints LIMIT 0")
        con.execute(f"CREATE OR REPLACE TABLE {TOUCHPOINT_LOG[1]} (derive BIGINT NOT NULL, row_key BIGINT NOT NULL)")
        con.execute(f"CREATE OR REPLACE TABLE {VARIANT_LOG} (derive BIGINT NOT NULL, variant VARCHAR)")
        return
    con.execute(f"INSERT INTO {TOUCHPOINT_LOG[0]} BY NAME SELECT ?::BIGINT AS derive, * FROM rows_changed", [number])
    con.execute(f"INSERT INTO {TOUCHPOINT_LOG[1]} SELECT ?, row_key FROM rows_gone", [number])


def derive_number(con: duckdb.DuckDBPyConnection) -> int:
    """How many derives this working file has committed (the last one's number)."""
    row = con.execute("SELECT value FROM internal.meta WHERE key = 'derives'").fetchone()
    return 0 if row is None else int(row[0])


DERIVE_VERSION = 10
"""The layout of the kept per-customer tables: a file derived by another version derives in full."""


def model_fingerprint(stage_model: StageModel | None) -> str:
    """What a derive's kept rows depend on: the whole stage model (rules, order, SLAs,
    owners) and the layout of the kept tables. Another fingerprint means a full derive."""
    model = stage_model or default_stage_model()
    text = f"{DERIVE_VERSION}:{model.model_dump_json()}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def derive(con: duckdb.DuckDBPyConnection, stage_model: StageModel | None = None, *,
           since: int | None = None) -> int | None:
    """Derive the analyst tables (the caller owns the transaction): in full, or with
    ``since`` only what the events after that position change; ``internal.derive_changes``
    records, under this derive's number, the customers derived again. Returns how many
    customers were derived again (None for a full derive)."""
    full = since is None
    model = stage_model or default_stage_model()
    con.execute(_SOURCE)
    affected = True  # whether any identity component changes (a full derive resolves them all)
    if full:
        con.execute("CREATE OR REPLACE TEMP TABLE affected_ids AS SELECT NULL::VARCHAR AS id_kind, NULL::VARCHAR AS id")
    else:
        con.execute(_AFFECTED.replace("$since", str(int(since))))
        affected = _any_affected(con)
        con.execute((_NAMED_TOUCHES + (_NAMING_TOUCHES if affected else "")).replace("$since", str(int(since))))
        con.execute(_NAMED_SOURCE)
    if affected:
        _resolve_identities(con, full)
    else:  # no identity component changed: the kept identity map owns the new touches
        con.execute(_NO_NEW_IDENTITIES)
    stages = compile_stages(model, "visits")
    touchpoints = _TOUCHPOINTS.replace("$stage_case", stages.sql)
    if full:
        con.execute("CREATE OR REPLACE TABLE touchpoints AS " + touchpoints.replace("$rows", "TRUE")
                    .replace("$map", "internal.identity_map"),
                    stages.parameters)
        touches = "touchpoints"
    else:  # every touch of the dirty customers, derived again: what the per-customer tables read
        con.execute(_DIRTY.replace("$since", str(int(since))))
        mine = customers_in(con, "dirty")
        con.execute(_ROWS_AGAIN.replace("$mine", mine))
        rows = "t.position * 2 + t.credit::INTEGER IN (SELECT row_key FROM rows_again)"
        con.execute(_AGAIN_SOURCE)
        con.execute("CREATE OR REPLACE TEMP TABLE changed_touchpoints AS " + touchpoints.replace("$rows", rows)
                    .replace("touch_source", "again_source").replace("$map", "internal.identity_map"), stages.parameters)
        con.execute(_TOUCHPOINT_CHANGES)  # only the rows that differ are rewritten (and logged)
        con.execute(f"DELETE FROM touchpoints WHERE {ROW_KEY} IN (SELECT row_key FROM rows_gone)")
        con.execute("INSERT INTO touchpoints BY NAME SELECT * FROM rows_changed")
        touches = "changed_touchpoints"
    number = derive_number(con) + 1
    compare = not full and not affected and not _new_stages_or_metrics(con, since)
    if compare:
        remember_people(con, "dirty")
    # an incremental derive keeps each table's replaced rows (``_KEPT_ROWS``): what the
    # running counts and the variants' delta read, instead of scanning the tables again
    for table, select in (("internal.steps", _STEPS), ("internal.paths", _PATHS),
                          ("internal.stage_entries", _STAGE_ENTRIES), ("customers", _CUSTOMERS)):
        replace_customers(con, table, select.replace("$touches", touches)
                          .replace("$steps", "internal.steps" if full else "steps_after"),
                          None if full else "dirty", None if full else _KEPT_ROWS.get(table))
    for running in RUNNING:
        if not full:
            running.forget(con, _KEPT_ROWS[running.source] + "_before")
        running.update(con, None if full else _KEPT_ROWS[running.source] + "_after")
    for statement in (_EDGES_TABLE, _NODES_TABLE, _STAGE_TRANSITIONS):
        con.execute(statement)
    if full:
        con.execute(_VARIANTS)
    else:  # the variants whose count changed are updated in place, and logged
        con.execute(_VARIANT_DELTA)
        for statement in _VARIANTS_IN_PLACE:
            con.execute(statement.replace("$number", str(number)).replace("$log", VARIANT_LOG))
    if full:
        con.execute("CREATE OR REPLACE TABLE customer_identifiers AS " + _CUSTOMER_IDENTIFIERS.replace(
            "$map", "internal.identity_map").replace("$ambiguities", "identity_ambiguities"))
    elif not affected:  # no identifier changed owner
        con.execute("CREATE OR REPLACE TEMP TABLE identifier_owners (customer_id VARCHAR)")
    else:  # the customers whose identifiers change are changed too (for the publish)
        con.execute("CREATE OR REPLACE TEMP TABLE new_identifiers AS " + _CUSTOMER_IDENTIFIERS.replace(
            "$map", "new_map").replace("$ambiguities", "new_ambiguities"))
        con.execute("CREATE OR REPLACE TEMP TABLE identifier_owners AS SELECT customer_id FROM new_identifiers UNION "
                    "SELECT customer_id FROM customer_identifiers SEMI JOIN affected_ids USING (id_kind, id)")
        con.execute("DELETE FROM customer_identifiers t USING affected_ids a WHERE t.id_kind = a.id_kind AND t.id = a.id")
        con.execute("INSERT INTO customer_identifiers SELECT * FROM new_identifiers")
    derive_consent(con, None if full else "dirty", touches)
    con.execute(CHANGES_DDL)
    con.execute("INSERT OR REPLACE INTO internal.meta VALUES ('derives', ?)", [str(number)])
    if full:
        con.execute("INSERT INTO internal.derive_changes VALUES (?, NULL, true)", [number])
        count = None
    else:
        con.execute("INSERT INTO internal.derive_changes SELECT ?, customer_id, false FROM "
                    "(SELECT customer_id FROM dirty UNION SELECT customer_id FROM identifier_owners)", [number])
        count = con.execute("SELECT count(*) FROM dirty").fetchone()[0]
    _log_touchpoints(con, number, full)
    written = write_analysis_tables(con, model, None if full else "dirty", touches, compare=compare)
    if written:  # one statement (one by table cost ~2 ms each)
        con.execute("INSERT OR REPLACE INTO internal.meta SELECT unnest($1::VARCHAR[]), $2",
                    [[WRITTEN + table for table in written], str(number)])
    con.execute("DROP VIEW IF EXISTS touch_source; DROP VIEW IF EXISTS named_source; DROP VIEW IF EXISTS again_source; "
                + "; ".join(f"DROP TABLE IF EXISTS {table}" for table in _TEMPORARY))
    return count


def _new_stages_or_metrics(con: duckdb.DuckDBPyConnection, since: int | None) -> bool:
    """Whether a touch stored after ``since`` has a stage or counts in a clinic metric: the
    analysis tables are then written without comparing their inputs before and after (a
    comparison that would find them changed, ~0.1 s at 1M touches)."""
    return bool(con.execute(f"SELECT EXISTS (SELECT 1 FROM changed_touchpoints WHERE position > ? "
                            f"AND (stage IS NOT NULL OR type IN {METRIC_TYPES}))", [since]).fetchone()[0])


def _any_affected(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the batch changes any identity component (``affected_ids``)."""
    return bool(con.execute("SELECT EXISTS (SELECT 1 FROM affected_ids)").fetchone()[0])


_NO_NEW_IDENTITIES = """
CREATE OR REPLACE TEMP TABLE new_map (id_kind VARCHAR, id VARCHAR, canonical VARCHAR);
CREATE OR REPLACE TEMP TABLE new_ambiguities (id_kind VARCHAR, id VARCHAR, candidates VARCHAR[]);
"""


def _resolve_identities(con: duckdb.DuckDBPyConnection, full: bool) -> None:
    """Connected components in SQL; groups with at most one patient are named there.
    Groups holding several patients (a shared phone) go to the domain's resolver,
    which gives each identifier its nearest patient or marks it ambiguous. Incremental:
    only the affected identifiers' components, whose rows replace theirs."""
    scope, semi = ("TRUE", "") if full else (_naming(), "SEMI JOIN affected_ids USING (id_kind, id)")
    con.execute(_IDENTIFIERS.replace("$touches", "internal.touches" if full else "named_touches")
                .replace("$scope", scope).replace("$semi", semi))
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
        "INSERT INTO new_map SELECT unnest($1::VARCHAR[]), unnest($2::VARCHAR[]), unnest($3::VARCHAR[])",
        [[k for k, _ in result.canonical_of], [v for _, v in result.canonical_of],
         list(result.canonical_of.values())],
    )
    con.execute("CREATE OR REPLACE TEMP TABLE new_ambiguities (id_kind VARCHAR, id VARCHAR, candidates VARCHAR[])")
    con.execute(
        "INSERT INTO new_ambiguities SELECT unnest($1::VARCHAR[]), unnest($2::VARCHAR[]), unnest($3::VARCHAR[][])",
        [[a.identifier[0] for a in result.ambiguities], [a.identifier[1] for a in result.ambiguities],
         [list(a.candidates) for a in result.ambiguities]],
    )
    for table, new in (("internal.identity_map", "new_map"), ("internal.identity_nodes", "new_nodes"),
                       ("identity_ambiguities", "new_ambiguities")):
        if full:
            con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM {new}")
        else:
            con.execute(f"DELETE FROM {table} t USING affected_ids a WHERE t.id_kind = a.id_kind AND t.id = a.id")
            con.execute(f"INSERT INTO {table} SELECT * FROM {new}")
