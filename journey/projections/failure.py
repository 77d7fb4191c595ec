"""Points of failure per journey stage: who did not move on in time, why, and whose step it was.

For each customer and stage of the model: when they entered it (their first touch of
that stage) and when they next reached the *next* stage of the model (skipping it, a
review straight after a first visit say, is not moving on). A customer *failed* a
stage when they did not reach the next one within its SLA; customers still inside their SLA
at the end of the data (the latest touch) are *pending* and counted in neither rate.

- ``stage_funnel``: per stage, entered / reached_next / dropped / conversions / SLA misses.
- ``failure_points``: failure rate per administrator, doctor, channel and branch (the
  first value on the customer's touches of that stage: who took them in) against the
  rest of the stage: lift, a two-proportion z-test (Benjamini-Hochberg over every test
  of this table and of ``stage_changes`` together) and a minimum-count guard, so three
  calls never make a culprit.
- ``stage_months`` and ``stage_changes`` (``journey.projections.changes``): what changed.
- ``failure_reasons``: the last touch before a failure (missed call without callback,
  cancellation, no-show, negative review, declined plan; otherwise the activity).
- ``stage_correlations``: which touches and people make moving on more or less likely:
  odds ratios with a 95% interval, computed only when every cell has enough customers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import duckdb

from journey.projections.kept import differ, replace_customers
from journey.projections.changes import CHANGE_COLUMNS, month_decided, stage_change_rows
from journey.projections.stage_model import OWNER_DIMENSIONS, StageModel
from journey.projections.stats import ALPHA, MIN_GROUP, benjamini_hochberg, two_proportion_p

__all__ = ["ALPHA", "DIMENSIONS", "MIN_CELL", "MIN_GROUP", "PER_CUSTOMER", "benjamini_hochberg", "kaplan_meier",
           "two_proportion_p", "write_failure_tables"]

DIMENSIONS = OWNER_DIMENSIONS
MIN_CELL = 5
"""An odds ratio is given only when each of its four cells holds at least this many customers."""

# A customer *reached* a stage when they reached it or any later one ("at least that
# far"): they entered stage k at their first touch of stage k or later, and moved on at
# their entry to stage k + 1. So counts never grow along the stages.
# Per customer and stage, from the customer's own touches only (kept between derives in
# ``internal.stage_outcomes``, replaced for the customers a derive changes): when they
# entered, moved on, and where the stage's window of touches ends if it is decided.
_OUTCOMES = """
WITH firsts AS (
    SELECT t.customer_id, o.stage_order, min(t.occurred_at) AS first_at
    FROM $touches t JOIN stage_order o ON o.stage = t.stage WHERE t.customer_id IS NOT NULL AND $dirty
    GROUP BY ALL
), grid AS (
    SELECT c.customer_id, o.stage_order
    FROM (SELECT customer_id, max(stage_order) AS furthest FROM firsts GROUP BY 1) c
    JOIN stage_order o ON o.stage_order <= c.furthest
), reached AS (
    SELECT g.customer_id, g.stage_order,
        min(f.first_at) OVER (PARTITION BY g.customer_id ORDER BY g.stage_order DESC
                              ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS entered_at,
        f.first_at AS own_at
    FROM grid g LEFT JOIN firsts f USING (customer_id, stage_order)
), m AS (
    SELECT *, lead(entered_at) OVER w AS next_at, lead(own_at) OVER w AS next_own_at
    FROM reached WINDOW w AS (PARTITION BY customer_id ORDER BY stage_order)
)
SELECT m.customer_id, m.stage_order, m.entered_at,
    CASE WHEN m.next_own_at >= m.own_at THEN (epoch_us(m.next_own_at) - epoch_us(m.own_at)) / 1e6 END AS own_seconds,
    m.next_at, (epoch_us(m.next_at) - epoch_us(m.entered_at)) / 1e6 AS seconds_to_next,
    CASE WHEN o.sla_seconds IS NULL THEN m.next_at
         ELSE least(coalesce(m.next_at, 'infinity'::TIMESTAMPTZ), m.entered_at + to_seconds(o.sla_seconds)) END AS cutoff
FROM m JOIN stage_order o USING (stage_order)
"""

def _failed(as_of: str) -> str:
    """Whether a stage outcome ``s`` (joined to its ``stage_order`` row ``o``) failed by the
    data's end ``as_of`` (SQL): true, false, or NULL (no next stage, or still deciding)."""
    return f"""CASE
        WHEN o.next_stage IS NULL THEN NULL
        WHEN o.sla_seconds IS NULL THEN s.next_at IS NULL
        WHEN s.next_at IS NOT NULL THEN epoch_us(s.next_at) - epoch_us(s.entered_at) > o.sla_seconds * 1e6
        WHEN epoch_us({as_of}) - epoch_us(s.entered_at) > o.sla_seconds * 1e6 THEN true
    END"""


def _observed(as_of: str) -> str:
    """How long a stage outcome ``s`` that has not moved on was observed by ``as_of``
    (seconds, SQL): where the Kaplan-Meier curve censors it."""
    return f"greatest((epoch_us({as_of}) - epoch_us(s.entered_at)) / 1e6, 0)"


# What depends on the end of the data (the latest touch): who failed, who is still deciding.
_STEPS = f"""
CREATE OR REPLACE TEMP VIEW stage_steps AS
SELECT s.customer_id, s.stage_order, o.stage, o.next_stage, o.sla_seconds, s.entered_at, s.own_seconds,
    s.next_at, s.seconds_to_next, $dimensions, s.reason, s.features,
    {_observed("a.as_of")} AS seconds_observed,
    {_failed("a.as_of")} AS failed,
    s.cutoff
FROM internal.stage_outcomes s JOIN stage_order o USING (stage_order)
CROSS JOIN data_end a
"""

# median_seconds_to_next: from the first touch of the stage to the first of the next, over
# the customers with both in that order (a stage skipped has no time of its own). in_progress: not moved on yet but still inside the stage's SLA at the end of the data
# (never counted as lost); lost: did not move on and the SLA ran out (or, with no SLA,
# never moved on). entered = reached_next + in_progress + lost.
_FUNNEL = """
CREATE OR REPLACE TABLE stage_funnel AS
WITH counts AS (
    SELECT o.stage, o.stage_order, o.next_stage, o.sla_seconds, count(s.customer_id) AS entered,
        count(s.next_at) AS reached, count(*) FILTER (WHERE s.failed) AS missed,
        count(*) FILTER (WHERE s.customer_id IS NOT NULL AND s.next_at IS NULL AND s.failed IS NULL) AS pending,
        median(s.own_seconds) AS median_next
    FROM stage_order o LEFT JOIN stage_steps s USING (stage_order)
    GROUP BY ALL
)
SELECT stage, CAST(stage_order AS INTEGER) AS stage_order, entered,
    CASE WHEN next_stage IS NOT NULL THEN reached END AS reached_next,
    CASE WHEN next_stage IS NOT NULL THEN entered - reached END AS dropped,
    CAST(entered AS DOUBLE) / nullif(lag(entered) OVER (ORDER BY stage_order), 0) AS conversion_from_previous,
    CAST(entered AS DOUBLE) / nullif(first_value(entered) OVER (ORDER BY stage_order), 0) AS conversion_from_first,
    CAST(sla_seconds AS BIGINT) AS sla_seconds,
    CASE WHEN next_stage IS NOT NULL THEN missed END AS missed_sla,
    CAST(CASE WHEN next_stage IS NOT NULL THEN median_next END AS DOUBLE) AS median_seconds_to_next,
    CASE WHEN next_stage IS NOT NULL THEN pending END AS in_progress,
    CASE WHEN next_stage IS NOT NULL THEN entered - reached - pending END AS lost
FROM counts ORDER BY stage_order
"""

# The touches of a stage visit before its outcome: the customer's touches (of any stage
# or none, consents and profiles aside) from entering the stage up to moving on or the
# SLA running out, whichever came first. A window's end does not depend on the end of
# the data, so what it holds is kept with the outcome (``internal.stage_outcomes``): who
# took the customer in (the first owner of each dimension on the stage's own touches),
# the last touch's reason, and the distinct features (touch features and owners) that
# ``stage_correlations`` counts.
_WINDOW_TOUCHES = """
CREATE OR REPLACE TEMP TABLE window_touches AS
SELECT s.customer_id, s.stage_order, t.seq, t.type, t.activity, t.answered, t.rating,
    t.status, t.purpose, t.properties, t.stage = o.stage AS own_stage,
    t.administrator, t.doctor, t.channel, t.branch
FROM new_outcomes s JOIN stage_order o USING (stage_order)
JOIN $touches t ON t.customer_id = s.customer_id
WHERE o.next_stage IS NOT NULL AND t.type NOT IN ('consent', 'profile')
  AND t.occurred_at >= s.entered_at AND (s.cutoff IS NULL OR t.occurred_at <= s.cutoff)
"""

_WINDOWS = """
WITH windows AS (
    SELECT s.customer_id, s.stage_order,
        $owners,
        arg_max($reason, t.seq) FILTER (WHERE t.seq IS NOT NULL) AS reason,
        coalesce(list(DISTINCT $feature) FILTER (WHERE t.seq IS NOT NULL), []) AS touch_features
    FROM new_outcomes s JOIN stage_order o USING (stage_order)
    LEFT JOIN window_touches t USING (customer_id, stage_order)
    WHERE o.next_stage IS NOT NULL
    GROUP BY s.customer_id, s.stage_order
)
SELECT s.*, $dimensions, w.reason,
    list_distinct(list_concat(w.touch_features, list_filter([$owner_features], lambda x: x IS NOT NULL))) AS features
FROM new_outcomes s LEFT JOIN windows w USING (customer_id, stage_order)
"""

_OWNERS = """
CREATE OR REPLACE TEMP VIEW stage_owners AS
SELECT customer_id, stage_order, stage, next_stage, failed, $dimensions, reason, features
FROM stage_steps WHERE failed IS NOT NULL
"""

_REASON = """CASE
    WHEN type = 'call' AND answered = false THEN 'missed call without callback'
    WHEN type = 'booking_cancelled' THEN 'cancellation'
    WHEN type = 'no_show' THEN 'no-show'
    WHEN type = 'review' AND (rating <= 2 OR TRY_CAST(properties->>'nps' AS INTEGER) <= 6) THEN 'negative review'
    WHEN type = 'treatment_plan' AND status = 'declined' THEN 'declined plan'
    ELSE 'last touch: ' || activity
END"""

_REASONS = """
CREATE OR REPLACE TABLE failure_reasons AS
WITH last AS (
    SELECT customer_id, stage_order, reason FROM stage_owners WHERE failed AND reason IS NOT NULL
)
SELECT o.stage, l.reason, count(*) AS failed,
    count(*) / sum(count(*)) OVER (PARTITION BY o.stage) AS share
FROM last l JOIN stage_order o USING (stage_order)
GROUP BY o.stage, o.stage_order, l.reason ORDER BY o.stage_order, failed DESC, reason
"""

_FEATURE = """activity || coalesce(':' || CASE type
    WHEN 'call' THEN CASE WHEN answered THEN 'answered' WHEN NOT answered THEN 'missed' END
    WHEN 'message' THEN purpose
    WHEN 'treatment_plan' THEN status
    WHEN 'review' THEN CASE WHEN rating <= 2 OR TRY_CAST(properties->>'nps' AS INTEGER) <= 6 THEN 'negative' ELSE 'positive' END
END, '')"""

_CORRELATIONS = """
CREATE OR REPLACE TABLE stage_correlations AS
WITH features AS (  -- distinct per customer and stage (one row each): the window's touch features and owners
    SELECT stage_order, failed, unnest(features) AS feature FROM stage_owners
), totals AS (
    SELECT stage_order, count(*) AS customers, count(*) FILTER (WHERE NOT failed) AS reached
    FROM stage_owners GROUP BY stage_order
), cells AS (  -- the outcome travels with each feature: no join back to the owners
    SELECT stage_order, feature, count(*) AS customers_with, count(*) FILTER (WHERE NOT failed) AS reached_with
    FROM features GROUP BY ALL
), ratios AS (
    SELECT c.*, t.customers - c.customers_with AS customers_without, t.reached - c.reached_with AS reached_without,
        least(c.reached_with, c.customers_with - c.reached_with, t.reached - c.reached_with,
              t.customers - c.customers_with - (t.reached - c.reached_with)) AS smallest_cell
    FROM cells c JOIN totals t USING (stage_order)
), logs AS (
    SELECT *, CASE WHEN smallest_cell >= $min_cell THEN
            ln(reached_with) - ln(customers_with - reached_with) - ln(reached_without) + ln(customers_without - reached_without)
        END AS log_or,
        sqrt(1.0 / reached_with + 1.0 / (customers_with - reached_with) + 1.0 / reached_without
             + 1.0 / (customers_without - reached_without)) AS se
    FROM ratios
)
SELECT o.stage, o.next_stage, l.feature, l.customers_with, l.reached_with, l.customers_without, l.reached_without,
    exp(l.log_or) AS odds_ratio, exp(l.log_or - 1.96 * l.se) AS ci_low, exp(l.log_or + 1.96 * l.se) AS ci_high,
    coalesce(l.log_or - 1.96 * l.se > 0 OR l.log_or + 1.96 * l.se < 0, false) AS significant
FROM logs l JOIN stage_order o USING (stage_order)
ORDER BY o.stage_order, abs(coalesce(l.log_or, 0)) DESC, l.feature
"""

_POINT_COLUMNS = ("stage VARCHAR, next_stage VARCHAR, dimension VARCHAR, value VARCHAR, entered BIGINT, "
                  "failed BIGINT, failure_rate DOUBLE, overall_rate DOUBLE, lift DOUBLE, p_value DOUBLE, "
                  "significant BOOLEAN, q_value DOUBLE, better BOOLEAN")
_CURVE_COLUMNS = ("stage VARCHAR, next_stage VARCHAR, seconds DOUBLE, at_risk BIGINT, reached BIGINT, "
                  "censored BIGINT, conversion DOUBLE")


PER_CUSTOMER = ("internal.stage_outcomes",)
"""What this module keeps per customer between derives."""
FAILURE_END = "internal.failure_end"
"""The data's end (``as_of``, one row) the failure tables were last computed at."""
KEPT = (*PER_CUSTOMER, FAILURE_END)
"""What this module keeps between derives."""
TABLES = ("stage_funnel", "stage_conversion_curve", "stage_months", "stage_changes", "failure_points",
          "failure_reasons", "stage_correlations")
"""The tables ``write_failure_tables`` writes, all or none."""


def _inputs(source: str, as_of: str) -> str:
    """What the failure tables read of each stage outcome in ``source`` by the data's end
    ``as_of`` (SQL), the censoring of those still deciding aside (``_CENSORING``): the
    tables count these rows and never ask whose they are; the owners, reason and features
    count only where the outcome is decided."""
    failed = _failed(as_of)
    owners = ", ".join(f"s.{d}" for d in DIMENSIONS)
    return f"""SELECT s.stage_order, s.entered_at, s.own_seconds, s.next_at, s.seconds_to_next, {failed} AS failed,
        CASE WHEN ({failed}) IS NOT NULL THEN [{owners}, s.reason] END AS owners,
        CASE WHEN ({failed}) IS NOT NULL THEN list_sort(s.features) END AS features
    FROM {source} s JOIN stage_order o USING (stage_order)"""


# Whether moving the data's end from $old to $new moves a Kaplan-Meier censoring across a
# time someone moved on at (at risk or censored at that time would change): the first such
# time of the stage at or after each censoring, against the censoring's new time.
_CENSORING = f"""
WITH censored AS (
    SELECT s.stage_order, {_observed("$old")} AS before, {_observed("$new")} AS after
    FROM internal.stage_outcomes s JOIN stage_order o USING (stage_order)
    WHERE o.next_stage IS NOT NULL AND s.next_at IS NULL
), moved_on AS (
    SELECT DISTINCT s.stage_order, s.seconds_to_next AS seconds
    FROM internal.stage_outcomes s JOIN stage_order o USING (stage_order)
    WHERE o.next_stage IS NOT NULL AND s.next_at IS NOT NULL
)
SELECT count(*) FROM censored c ASOF JOIN moved_on m ON c.stage_order = m.stage_order AND m.seconds >= c.before
WHERE m.seconds <= c.after
"""

# Outcomes whose failure the move of the data's end decides (a customer still deciding
# whose SLA ran out in between), and months the move decides.
_DECIDED = f"""
SELECT (SELECT count(*) FROM internal.stage_outcomes s JOIN stage_order o USING (stage_order)
        WHERE s.next_at IS NULL AND o.sla_seconds IS NOT NULL
          AND ({_failed("$old")}) IS DISTINCT FROM ({_failed("$new")}))
     + (SELECT count(*) FROM stage_months m JOIN stage_order o USING (stage_order)
        WHERE ({month_decided("m.month", "o.sla_seconds", "$old")}) <> ({month_decided("m.month", "o.sla_seconds", "$new")}))
"""


def write_failure_tables(con: duckdb.DuckDBPyConnection, model: StageModel, dirty: str | None = None,
                         touches: str = "touchpoints", *, compare: bool = True) -> bool:
    """(Re)write the failure tables (``TABLES``) from ``touchpoints`` under ``model``. With
    ``dirty`` (a table of customer ids), only those customers' stage outcomes and windows
    are derived again, from ``touches`` (a table holding every touch of theirs); the
    tables are then computed from the kept per-customer rows and the data's end, or kept
    as they are when nothing they read changed: the dirty customers' outcomes as the
    tables read them (``_inputs``), whose failure or month the data's end decides, and the
    Kaplan-Meier censoring (``_CENSORING``); with ``compare`` False they are written without
    comparing. Returns whether the tables were written."""
    _stage_order(con, model)
    scope = "TRUE" if dirty is None else f"t.customer_id IN (SELECT customer_id FROM {dirty})"
    con.execute("CREATE OR REPLACE TEMP TABLE new_outcomes AS "
                + _OUTCOMES.replace("$dirty", scope).replace("$touches", touches))
    con.execute(_WINDOW_TOUCHES.replace("$touches", touches))
    owners = ", ".join(f"arg_min(t.{d}, t.seq) FILTER (WHERE t.own_stage AND t.{d} IS NOT NULL) AS {d}"
                       for d in DIMENSIONS)
    dimensions = ", ".join(f"w.{d}" for d in DIMENSIONS)
    owner_features = ", ".join(f"'{d}=' || w.{d}" for d in DIMENSIONS)
    windows = (_WINDOWS.replace("$owners", owners).replace("$reason", _REASON).replace("$feature", _FEATURE)
               .replace("$dimensions", dimensions).replace("$owner_features", owner_features))
    before = None if dirty is None or not compare else _kept_end(con)
    if before is not None:
        mine = f"(SELECT * FROM internal.stage_outcomes WHERE customer_id IN (SELECT customer_id FROM {dirty}))"
        con.execute("CREATE OR REPLACE TEMP TABLE old_inputs AS " + _inputs(mine, "$end"), {"end": before})
        con.execute("CREATE OR REPLACE TEMP TABLE new_windows AS " + windows)
        windows = "SELECT * FROM new_windows"
    replace_customers(con, "internal.stage_outcomes", windows, dirty)
    con.execute("CREATE OR REPLACE TEMP TABLE data_end AS SELECT max(occurred_at) AS as_of FROM touchpoints")
    write = before is None or _moved(con, before)
    if write:
        _write_tables(con)
    for table in ("stage_order", "data_end", "new_outcomes", "window_touches", "old_inputs", "new_windows"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return write


def _kept_end(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The data's end the kept failure tables were computed at (None: not known)."""
    row = con.execute(f"SELECT max(as_of) FROM {FAILURE_END}").fetchone()
    return None if row is None else row[0]


def _moved(con: duckdb.DuckDBPyConnection, before: datetime) -> bool:
    """Whether anything the failure tables read changed since they were computed at the
    data's end ``before`` (the dirty customers' outcomes replaced, ``data_end`` the new end)."""
    after = con.execute("SELECT as_of FROM data_end").fetchone()[0]
    if after is None or after < before:
        return True
    changed = differ(con, "old_inputs", "(" + _inputs("new_windows", "$end") + ")", {"end": after})
    if changed or after == before:
        return changed
    moved = {"old": before, "new": after}
    return bool(con.execute(_DECIDED, moved).fetchone()[0] or con.execute(_CENSORING, moved).fetchone()[0])


def _write_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Every failure table from the kept stage outcomes and ``data_end``, which is kept."""
    dimensions = ", ".join(f"s.{d}" for d in DIMENSIONS)
    con.execute(_STEPS.replace("$dimensions", dimensions))
    con.execute(_FUNNEL)
    _curves(con)
    con.execute(_OWNERS.replace("$dimensions", ", ".join(DIMENSIONS)))
    con.execute(_REASONS)
    con.execute(_CORRELATIONS.replace("$dimensions", ", ".join(DIMENSIONS)), {"min_cell": MIN_CELL})
    _write_tests(con, _failure_points(con), stage_change_rows(con))
    con.execute("DROP VIEW stage_owners; DROP VIEW stage_steps")
    con.execute(f"CREATE OR REPLACE TABLE {FAILURE_END} AS SELECT as_of FROM data_end")


def _stage_order(con: duckdb.DuckDBPyConnection, model: StageModel) -> None:
    names = list(model.names)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE stage_order AS SELECT stage, CAST(stage_order AS INTEGER) AS stage_order, "
        "lead(stage) OVER (ORDER BY stage_order) AS next_stage, sla_seconds, owners FROM "
        "(SELECT unnest($names) AS stage, unnest($orders) AS stage_order, unnest($slas) AS sla_seconds, "
        "unnest($owners::VARCHAR[][]) AS owners)",
        {"names": names, "orders": list(range(1, len(names) + 1)),
         "slas": [stage.sla_seconds for stage in model.stages],
         "owners": [list(stage.owners) for stage in model.stages]})


def _failure_points(con: duckdb.DuckDBPyConnection) -> list[list[object]]:
    """Every owner value of every stage against the rest of its stage: the rows of
    ``failure_points`` up to the p-value (the caller corrects and writes them)."""
    dimensions = ", ".join(DIMENSIONS)
    rows = con.execute(f"""
        WITH owned AS (
            SELECT stage_order, stage, next_stage, failed, dimension, value
            FROM stage_owners UNPIVOT (value FOR dimension IN ({dimensions}))
        ), overall AS (
            SELECT stage_order, count(*) AS n, count(*) FILTER (WHERE failed) AS f FROM stage_owners GROUP BY 1
        )
        SELECT o.stage, o.next_stage, o.dimension, o.value, count(*) AS entered,
            count(*) FILTER (WHERE o.failed) AS failed, any_value(v.n), any_value(v.f)
        FROM owned o JOIN overall v USING (stage_order) JOIN stage_order s USING (stage_order)
        WHERE list_contains(s.owners, o.dimension)
        GROUP BY o.stage_order, o.stage, o.next_stage, o.dimension, o.value
        ORDER BY o.stage_order, o.dimension, o.value
    """).fetchall()
    scored: list[list[object]] = []
    for stage, next_stage, dimension, value, entered, failed, total, total_failed in rows:
        p = two_proportion_p(failed, entered, total_failed - failed, total - entered)
        rate, overall = failed / entered, total_failed / total
        scored.append([stage, next_stage, dimension, value, entered, failed, rate, overall,
                       rate / overall if overall else None, p])
    return scored


def _write_tests(con: duckdb.DuckDBPyConnection, points: list[list[object]], changes: list[list[object]]) -> None:
    """One Benjamini-Hochberg correction over every test the report shows: the points of
    failure and the month-over-month changes together. A point is ``significant`` when it
    loses more (lift > 1) and q < ALPHA, ``better`` when it loses fewer as significantly
    (what to learn from, never blamed); a change is ``significant`` when q < ALPHA."""
    q_values = benjamini_hochberg([row[-1] for row in points] + [row[-1] for row in changes])
    for row, q in zip(points, q_values[:len(points)], strict=True):
        found = q is not None and q < ALPHA
        lift = row[8]
        row += [found and lift is not None and lift > 1, q, found and lift is not None and lift < 1]
    for row, q in zip(changes, q_values[len(points):], strict=True):
        row += [q, q is not None and q < ALPHA, row[6] > row[10]]
    _insert(con, "failure_points", _POINT_COLUMNS, points)
    _insert(con, "stage_changes", CHANGE_COLUMNS, changes)


# The Kaplan-Meier curve of moving on, per group, over ``km_input(grp, seconds, done)``: one
# row per distinct time (at risk, reached then, censored then, share reached by then =
# 1 - survival). A customer who has not moved on yet is censored at the time observed
# so far: still deciding, not lost.
_KAPLAN_MEIER = """
WITH g AS (
    SELECT grp, seconds, count(*) FILTER (WHERE done) AS reached, count(*) FILTER (WHERE NOT done) AS censored
    FROM km_input GROUP BY ALL
), r AS (
    SELECT *, CAST(sum(reached + censored) OVER (PARTITION BY grp ORDER BY seconds DESC
                                                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT) AS at_risk
    FROM g
)
SELECT grp, seconds, at_risk, reached, censored,
    1 - product(1 - reached / at_risk) OVER (PARTITION BY grp ORDER BY seconds
                                              ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS conversion
FROM r
"""


def kaplan_meier(durations: Sequence[float], reached: Sequence[bool]) -> list[tuple[float, int, int, int, float]]:
    """The derive's Kaplan-Meier SQL on one group: (time, at risk, reached then, censored
    then, share reached by then), one row per distinct time."""
    con = duckdb.connect()
    try:
        con.execute("CREATE TEMP TABLE km_input AS SELECT 1 AS grp, unnest($1::DOUBLE[]) AS seconds, "
                    "unnest($2::BOOLEAN[]) AS done", [list(durations), list(reached)])
        return [tuple(row[1:]) for row in con.execute(_KAPLAN_MEIER + " ORDER BY seconds").fetchall()]
    finally:
        con.close()


def _curves(con: duckdb.DuckDBPyConnection) -> None:
    """``stage_conversion_curve`` (Kaplan-Meier per stage), and each stage's share reaching the
    next within its SLA estimated on it (``stage_funnel.conversion_within_sla``)."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE km_input AS
        SELECT stage_order AS grp, coalesce(seconds_to_next, seconds_observed) AS seconds,
            next_at IS NOT NULL AS done
        FROM stage_steps WHERE next_stage IS NOT NULL
    """)
    con.execute(f"CREATE OR REPLACE TEMP TABLE km AS {_KAPLAN_MEIER}")
    con.execute(f"CREATE OR REPLACE TABLE stage_conversion_curve ({_CURVE_COLUMNS})")
    con.execute("""
        INSERT INTO stage_conversion_curve
        SELECT o.stage, o.next_stage, k.seconds, k.at_risk, k.reached, k.censored, k.conversion
        FROM km k JOIN stage_order o ON o.stage_order = k.grp WHERE k.reached > 0 ORDER BY k.grp, k.seconds
    """)
    con.execute("ALTER TABLE stage_funnel ADD COLUMN conversion_within_sla DOUBLE")
    con.execute("""
        UPDATE stage_funnel f SET conversion_within_sla = w.share
        FROM (SELECT o.stage, coalesce(arg_max(k.conversion, k.seconds) FILTER (WHERE k.seconds <= o.sla_seconds), 0.0)
                  AS share
              FROM km k JOIN stage_order o ON o.stage_order = k.grp WHERE o.sla_seconds IS NOT NULL GROUP BY o.stage) w
        WHERE f.stage = w.stage
    """)
    con.execute("DROP TABLE km_input; DROP TABLE km")


def _insert(con: duckdb.DuckDBPyConnection, table: str, columns: str, rows: Sequence[Sequence[object]]) -> None:
    """Rows computed in Python into a new table, column by column in one statement
    (``executemany`` inserts a row per call: 24 s for the 300,000-touch clinic's curves)."""
    con.execute(f"CREATE OR REPLACE TABLE {table} ({columns})")
    if rows:
        types = [kind for _, kind, *_ in con.execute(f"DESCRIBE {table}").fetchall()]  # as DuckDB parsed them
        unnests = ", ".join(f"unnest(${n}::{kind}[])" for n, kind in enumerate(types, start=1))
        con.execute(f"INSERT INTO {table} SELECT {unnests}", [list(values) for values in zip(*rows, strict=True)])
