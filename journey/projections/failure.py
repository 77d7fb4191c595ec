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

Every table is computed from counts kept between derives (``COUNTS``: per stage, month,
owner, reason, feature, time to move on, entry still open), which a derive keeps up by
adding what each changed stage outcome counts now and taking away what it counted before
(its sign), so 1,000 late touches cost a few thousand rows counted, not every outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb

from journey.projections.kept import replace_customers
from journey.projections.changes import CHANGE_COLUMNS, month_decided, stage_change_rows
from journey.projections.stage_model import OWNER_DIMENSIONS, StageModel
from journey.projections.stats import ALPHA, MIN_GROUP, benjamini_hochberg, two_proportion_p

__all__ = ["ALPHA", "COUNTS", "DIMENSIONS", "KEPT", "MEDIANS", "MIN_CELL", "MIN_GROUP", "PER_CUSTOMER", "TABLES",
           "benjamini_hochberg", "kaplan_meier", "two_proportion_p", "write_failure_tables"]

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


# median_seconds_to_next: from the first touch of the stage to the first of the next, over
# the customers with both in that order (a stage skipped has no time of its own). in_progress: not moved on yet but still inside the stage's SLA at the end of the data
# (never counted as lost); lost: did not move on and the SLA ran out (or, with no SLA,
# never moved on). entered = reached_next + in_progress + lost.
_FUNNEL = """
CREATE OR REPLACE TABLE stage_funnel AS
WITH counts AS (
    SELECT o.stage, o.stage_order, o.next_stage, o.sla_seconds, coalesce(f.entered, 0) AS entered,
        coalesce(f.reached, 0) AS reached, coalesce(f.missed, 0) AS missed, coalesce(f.pending, 0) AS pending,
        m.median_seconds AS median_next
    FROM stage_order o LEFT JOIN internal.failure_funnel_counts f USING (stage_order)
    LEFT JOIN internal.failure_medians m USING (stage_order)
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
SELECT o.stage, r.reason, r.failed, r.failed / sum(r.failed) OVER (PARTITION BY o.stage) AS share
FROM internal.failure_reason_counts r JOIN stage_order o USING (stage_order)
ORDER BY o.stage_order, r.failed DESC, r.reason
"""

_FEATURE = """activity || coalesce(':' || CASE type
    WHEN 'call' THEN CASE WHEN answered THEN 'answered' WHEN NOT answered THEN 'missed' END
    WHEN 'message' THEN purpose
    WHEN 'treatment_plan' THEN status
    WHEN 'review' THEN CASE WHEN rating <= 2 OR TRY_CAST(properties->>'nps' AS INTEGER) <= 6 THEN 'negative' ELSE 'positive' END
END, '')"""

_CORRELATIONS = """
CREATE OR REPLACE TABLE stage_correlations AS
WITH totals AS (  -- the decided outcomes: the features count each customer once per stage, with its outcome
    SELECT stage_order, decided AS customers, decided - missed AS reached FROM internal.failure_funnel_counts
), cells AS (
    SELECT stage_order, feature, customers AS customers_with, reached AS reached_with FROM internal.failure_feature_counts
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
"""The data's end (``as_of``, one row) the kept counts were last brought to."""


def _n(condition: str) -> str:
    """The signed count of the counted rows where ``condition`` holds (SQL)."""
    return f"CAST(sum(CASE WHEN {condition} THEN sign ELSE 0 END) AS BIGINT)"


@dataclass(frozen=True)
class _Count:
    """A count the failure tables are computed from, kept in ``table`` between derives:
    per ``keys``, each column of ``columns`` counts the rows of ``rows`` (a query over
    ``failure_inputs``, a stage outcome per row with its ``sign``) where its condition
    holds. The keys are never NULL. Not a ``kept.RunningCount``: that one counts a
    per-customer table's rows by customer, while an outcome counts here by the data's
    end too (the same outcome -1 at the old end, +1 at the new), and these counts are
    updated in place (a running count's table is written again whole)."""

    table: str
    keys: tuple[str, ...]
    columns: dict[str, str]
    rows: str

    def counted(self) -> str:
        """What the signed rows of ``failure_inputs`` add per key, keys adding nothing left out."""
        keys = ", ".join(self.keys)
        counts = ", ".join(f"{_n(condition)} AS {name}" for name, condition in self.columns.items())
        nonzero = " OR ".join(f"{name} <> 0" for name in self.columns)
        return f"SELECT * FROM (SELECT {keys}, {counts} FROM ({self.rows}) GROUP BY {keys}) WHERE {nonzero}"

    def build(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute(f"CREATE OR REPLACE TABLE {self.table} AS {self.counted()}")

    def add(self, con: duckdb.DuckDBPyConnection) -> bool:
        """Add what ``failure_inputs`` counts (signed) to the kept counts, in place; keys
        whose counts all come to 0 go. Returns whether any count moved."""
        con.execute(f"CREATE OR REPLACE TEMP TABLE failure_delta AS {self.counted()}")
        if not con.execute("SELECT count(*) FROM failure_delta").fetchone()[0]:
            return False
        same = " AND ".join(f"t.{key} = d.{key}" for key in self.keys)
        added = ", ".join(f"{name} = t.{name} + d.{name}" for name in self.columns)
        con.execute(f"UPDATE {self.table} t SET {added} FROM failure_delta d WHERE {same}")
        con.execute(f"INSERT INTO {self.table} BY NAME SELECT d.* FROM failure_delta d "
                    f"ANTI JOIN {self.table} t USING ({', '.join(self.keys)})")
        con.execute(f"DELETE FROM {self.table} WHERE " + " AND ".join(f"{name} = 0" for name in self.columns))
        return True


_DIMENSION_LIST = ", ".join(DIMENSIONS)
# What the failure tables count. A stage outcome is decided once it failed or not
# (``_failed``): only decided outcomes count for their owners, reason and features; the
# Kaplan-Meier curve counts the times taken to move on, and censors the entries still
# open at the data's end (counted by entry time: the end moves, the entries do not).
COUNTS = (
    _Count("internal.failure_funnel_counts", ("stage_order",),
           {"entered": "TRUE", "reached": "next_at IS NOT NULL", "missed": "failed",
            "pending": "next_at IS NULL AND failed IS NULL", "decided": "failed IS NOT NULL"},
           "SELECT * FROM failure_inputs"),
    _Count("internal.failure_month_counts", ("stage_order", "month"),
           {"entered": "TRUE", "lost": "failed", "moved_on": "NOT failed", "in_progress": "failed IS NULL"},
           "SELECT *, CAST(date_trunc('month', entered_at AT TIME ZONE 'UTC') AS DATE) AS month FROM failure_inputs "
           "WHERE next_stage IS NOT NULL AND sla_seconds IS NOT NULL"),
    _Count("internal.failure_owner_counts", ("stage_order", "dimension", "value"), {"entered": "TRUE", "failed": "failed"},
           f"SELECT * FROM (SELECT sign, stage_order, failed, {_DIMENSION_LIST} FROM failure_inputs "
           f"WHERE failed IS NOT NULL) UNPIVOT (value FOR dimension IN ({_DIMENSION_LIST}))"),
    _Count("internal.failure_reason_counts", ("stage_order", "reason"), {"failed": "TRUE"},
           "SELECT * FROM failure_inputs WHERE failed AND reason IS NOT NULL"),
    _Count("internal.failure_feature_counts", ("stage_order", "feature"), {"customers": "TRUE", "reached": "NOT failed"},
           "SELECT sign, stage_order, failed, unnest(features) AS feature FROM failure_inputs WHERE failed IS NOT NULL"),
    _Count("internal.failure_reached_counts", ("stage_order", "seconds"), {"n": "TRUE"},
           "SELECT sign, stage_order, seconds_to_next AS seconds FROM failure_inputs "
           "WHERE next_stage IS NOT NULL AND next_at IS NOT NULL"),
    _Count("internal.failure_open_counts", ("stage_order", "entered_at"), {"n": "TRUE"},
           "SELECT sign, stage_order, entered_at FROM failure_inputs WHERE next_stage IS NOT NULL AND next_at IS NULL"),
)
"""The counts kept between derives, from which every failure table is computed."""
_CURVES_MOVED = " UNION ".join(f"SELECT stage_order FROM ({count.counted()})" for count in COUNTS
                               if count.table in ("internal.failure_reached_counts", "internal.failure_open_counts"))
"""The stages whose Kaplan-Meier counts the signed rows of ``failure_inputs`` moved (the
data's end kept: where the open entries are censored stays)."""
MEDIANS = "internal.failure_medians"
"""Each stage's median time to the next (medians do not add up: computed again over every
outcome when a changed outcome's own time did)."""
KEPT = (*PER_CUSTOMER, FAILURE_END, MEDIANS, *(count.table for count in COUNTS))
"""What this module keeps between derives."""
TABLES = ("stage_funnel", "stage_conversion_curve", "stage_months", "stage_changes", "failure_points",
          "failure_reasons", "stage_correlations")
"""The tables ``write_failure_tables`` writes, all or none."""


def _inputs(source: str, as_of: str, sign: int) -> str:
    """What the kept counts count of each stage outcome in ``source`` by the data's end
    ``as_of`` (SQL), with its ``sign`` (+1 counted, -1 taken away)."""
    owners = ", ".join(f"s.{d}" for d in DIMENSIONS)
    return f"""SELECT {sign} AS sign, s.stage_order, o.next_stage, o.sla_seconds, s.entered_at, s.own_seconds,
        s.next_at, s.seconds_to_next, {_failed(as_of)} AS failed, {owners}, s.reason, s.features
    FROM {source} s JOIN stage_order o USING (stage_order)"""


# The outcomes of the customers not derived again whose failure the move of the data's
# end from $old to $new decides (a customer still deciding whose SLA ran out in between).
_DECIDED_BY_END = f"""(
    SELECT s.* FROM internal.stage_outcomes s ANTI JOIN $dirty d USING (customer_id)
    JOIN stage_order o USING (stage_order)
    WHERE s.next_at IS NULL AND o.sla_seconds IS NOT NULL
      AND ({_failed("$old")}) IS DISTINCT FROM ({_failed("$new")}))"""

# Whether moving the data's end from $old to $new moves a Kaplan-Meier censoring across a
# time someone moved on at (at risk or censored at that time would change): the first such
# time of the stage at or after each censoring, against the censoring's new time.
_CENSORING = f"""
WITH censored AS (
    SELECT stage_order, {_observed("$old")} AS before, {_observed("$new")} AS after
    FROM internal.failure_open_counts s
)
SELECT count(*) FROM censored c ASOF JOIN internal.failure_reached_counts m
    ON c.stage_order = m.stage_order AND m.seconds >= c.before
WHERE m.seconds <= c.after
"""

# Months whose ``decided`` the move of the data's end flips.
_MONTHS_DECIDED = f"""
SELECT count(*) FROM stage_months m JOIN stage_order o USING (stage_order)
WHERE ({month_decided("m.month", "o.sla_seconds", "$old")}) <> ({month_decided("m.month", "o.sla_seconds", "$new")})
"""

# Whether the signed rows leave anything counted: a row as the counts read it (every
# column of ``_inputs``; owners, reason and features only where the outcome is decided,
# features in any order) without its opposite. One query instead of every count's; a
# follower's batch (messages in the open windows of undecided outcomes) usually leaves nothing.
_UNCANCELLED = f"""
SELECT EXISTS (
    SELECT COLUMNS(* EXCLUDE (sign)) FROM (
        SELECT * EXCLUDE ({_DIMENSION_LIST}, reason, features),
            CASE WHEN failed IS NOT NULL THEN [{_DIMENSION_LIST}, reason] END AS decided_owners,
            CASE WHEN failed IS NOT NULL THEN list_sort(features) END AS decided_features
        FROM failure_inputs)
    GROUP BY ALL HAVING sum(sign) <> 0)
"""

_OWN_TIMES_MOVED = "SELECT EXISTS (SELECT 1 FROM failure_inputs GROUP BY stage_order, own_seconds HAVING sum(sign) <> 0)"


def write_failure_tables(con: duckdb.DuckDBPyConnection, model: StageModel, dirty: str | None = None,
                         touches: str = "touchpoints") -> bool:
    """(Re)write the failure tables (``TABLES``) from ``touchpoints`` under ``model``. With
    ``dirty`` (a table of customer ids), only those customers' stage outcomes and windows
    are derived again, from ``touches`` (a table holding every touch of theirs), and the
    kept counts (``COUNTS``) take their old outcomes away (as counted at the kept end of the
    data) and add their new ones, as well as the other outcomes whose failure the data's
    new end decides. The tables are written again from the counts when a count moved, a
    changed outcome's own time did (the medians), or the new end flips a month's
    ``decided`` or moves a Kaplan-Meier censoring across a time someone moved on at;
    otherwise they are kept as they are. Returns whether the tables were written."""
    _stage_order(con, model)
    con.execute("CREATE OR REPLACE TEMP TABLE data_end AS SELECT max(occurred_at) AS as_of FROM touchpoints")
    after = con.execute("SELECT as_of FROM data_end").fetchone()[0]
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
    before = None if dirty is None else _kept_end(con)
    if dirty is None or before is None:
        replace_customers(con, "internal.stage_outcomes", windows, None)
        con.execute("CREATE OR REPLACE TEMP TABLE failure_inputs AS "
                    + _inputs("internal.stage_outcomes", "$end::TIMESTAMPTZ", 1), {"end": after})
        for count in COUNTS:
            count.build(con)
        moved = changed = True
    else:
        mine = f"(SELECT * FROM internal.stage_outcomes WHERE customer_id IN (SELECT customer_id FROM {dirty}))"
        con.execute("CREATE OR REPLACE TEMP TABLE failure_inputs AS " + _inputs(mine, "$end::TIMESTAMPTZ", -1), {"end": before})
        if after != before:  # one scan of the outcomes for both ends
            ends = {"old": before, "new": after}
            con.execute("CREATE OR REPLACE TEMP TABLE decided_by_end AS "
                        + _DECIDED_BY_END.replace("$dirty", dirty), ends)
            con.execute("INSERT INTO failure_inputs " + _inputs("decided_by_end", "$end", -1), {"end": before})
            con.execute("INSERT INTO failure_inputs " + _inputs("decided_by_end", "$end", 1), {"end": after})
        con.execute("CREATE OR REPLACE TEMP TABLE new_windows AS " + windows)
        replace_customers(con, "internal.stage_outcomes", "SELECT * FROM new_windows", dirty)
        con.execute("INSERT INTO failure_inputs " + _inputs("new_windows", "$end::TIMESTAMPTZ", 1), {"end": after})
        # a follower's batch usually changes no outcome as counted: its rows cancel out
        changed = bool(con.execute(_UNCANCELLED).fetchone()[0])
        moved = changed and any([count.add(con) for count in COUNTS])  # every count, moved or not
    own_times = dirty is None or before is None or (changed and bool(con.execute(_OWN_TIMES_MOVED).fetchone()[0]))
    if own_times:
        con.execute(f"CREATE OR REPLACE TABLE {MEDIANS} AS SELECT stage_order, median(own_seconds) AS median_seconds "
                    "FROM internal.stage_outcomes GROUP BY stage_order")
    write = moved or own_times or _end_decides(con, before, after)
    if write:
        curves = None  # every stage's curve: a full derive, or the end moved (every censoring with it)
        if dirty is not None and before is not None and after == before:
            con.execute(f"CREATE OR REPLACE TEMP TABLE curve_groups AS {_CURVES_MOVED}")
            curves = "curve_groups"
        _write_tables(con, curves)
    con.execute(f"CREATE OR REPLACE TABLE {FAILURE_END} AS SELECT as_of FROM data_end")
    for table in ("stage_order", "data_end", "new_outcomes", "window_touches", "new_windows", "failure_inputs",
                  "failure_delta", "decided_by_end", "curve_groups"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return write


def _kept_end(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The data's end the kept counts were brought to (None: not known)."""
    row = con.execute(f"SELECT max(as_of) FROM {FAILURE_END}").fetchone()
    return None if row is None else row[0]


def _end_decides(con: duckdb.DuckDBPyConnection, before: datetime | None, after: datetime | None) -> bool:
    """Whether moving the data's end from ``before`` to ``after``, the counts unchanged,
    changes a failure table: a month's ``decided``, or a censoring across a time someone
    moved on at (at risk and censored counts at every reported time are otherwise the same)."""
    if before == after:
        return False
    if before is None or after is None or after < before:
        return True
    ends = {"old": before, "new": after}
    return bool(con.execute(_MONTHS_DECIDED, ends).fetchone()[0] or con.execute(_CENSORING, ends).fetchone()[0])


def _write_tables(con: duckdb.DuckDBPyConnection, curves: str | None = None) -> None:
    """Every failure table from the kept counts and ``data_end``; with ``curves`` (a table of
    ``stage_order``) only those stages' Kaplan-Meier curves are computed again."""
    con.execute(_FUNNEL)
    _curves(con, curves)
    con.execute(_REASONS)
    con.execute(_CORRELATIONS, {"min_cell": MIN_CELL})
    _write_tests(con, _failure_points(con), stage_change_rows(con, "internal.failure_month_counts"))


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
    rows = con.execute("""
        SELECT o.stage, o.next_stage, w.dimension, w.value, w.entered, w.failed, f.decided, f.missed
        FROM internal.failure_owner_counts w JOIN stage_order o USING (stage_order)
        JOIN internal.failure_funnel_counts f USING (stage_order)
        WHERE list_contains(o.owners, w.dimension)
        ORDER BY o.stage_order, w.dimension, w.value
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


# The Kaplan-Meier curve of moving on, per group, over ``km_counts(grp, seconds, reached,
# censored)`` (one row per group and distinct time): at risk, reached then, censored then,
# share reached by then = 1 - survival. A customer who has not moved on yet is censored at
# the time observed so far: still deciding, not lost.
_KAPLAN_MEIER = """
WITH r AS (
    SELECT *, CAST(sum(reached + censored) OVER (PARTITION BY grp ORDER BY seconds DESC
                                                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT) AS at_risk
    FROM km_counts
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
        con.execute("CREATE TEMP TABLE km_counts AS SELECT 1 AS grp, seconds, count(*) FILTER (WHERE done) AS reached, "
                    "count(*) FILTER (WHERE NOT done) AS censored FROM (SELECT unnest($1::DOUBLE[]) AS seconds, "
                    "unnest($2::BOOLEAN[]) AS done) GROUP BY ALL", [list(durations), list(reached)])
        return [tuple(row[1:]) for row in con.execute(_KAPLAN_MEIER + " ORDER BY seconds").fetchall()]
    finally:
        con.close()


def _curves(con: duckdb.DuckDBPyConnection, groups: str | None = None) -> None:
    """``stage_conversion_curve`` (Kaplan-Meier per stage), and each stage's share reaching the
    next within its SLA estimated on it (``stage_funnel.conversion_within_sla``). With
    ``groups`` (a table of ``stage_order``), only those stages' curves are computed again
    (a curve depends on its own stage's counts only); the others are kept.

    The share within the SLA is read off the curve: the conversion at the last time someone
    moved on by the SLA (0 when nobody did). The times where someone was only censored, which
    the curve leaves out, carry the conversion before them, so this is the curve's value at
    the SLA in full and in part alike."""
    scope = "TRUE" if groups is None else f"stage_order IN (SELECT stage_order FROM {groups})"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE km_counts AS
        SELECT grp, seconds, CAST(sum(reached) AS BIGINT) AS reached, CAST(sum(censored) AS BIGINT) AS censored
        FROM (SELECT stage_order AS grp, seconds, n AS reached, 0 AS censored FROM internal.failure_reached_counts
              WHERE {scope}
              UNION ALL
              SELECT s.stage_order, {_observed("a.as_of")}, 0, s.n FROM internal.failure_open_counts s CROSS JOIN data_end a
              WHERE {scope})
        GROUP BY ALL
    """)
    con.execute(f"CREATE OR REPLACE TEMP TABLE km AS {_KAPLAN_MEIER}")
    if groups is None:
        con.execute(f"CREATE OR REPLACE TABLE stage_conversion_curve ({_CURVE_COLUMNS})")
    else:
        con.execute(f"DELETE FROM stage_conversion_curve WHERE stage IN (SELECT stage FROM stage_order WHERE {scope})")
    con.execute("""
        INSERT INTO stage_conversion_curve
        SELECT o.stage, o.next_stage, k.seconds, k.at_risk, k.reached, k.censored, k.conversion
        FROM km k JOIN stage_order o ON o.stage_order = k.grp WHERE k.reached > 0 ORDER BY k.grp, k.seconds
    """)
    con.execute("ALTER TABLE stage_funnel ADD COLUMN conversion_within_sla DOUBLE")
    con.execute("""
        UPDATE stage_funnel f SET conversion_within_sla = coalesce(w.share, 0.0)
        FROM (SELECT o.stage, arg_max(c.conversion, c.seconds) FILTER (WHERE c.seconds <= o.sla_seconds) AS share
              FROM stage_order o LEFT JOIN stage_conversion_curve c USING (stage)
              WHERE o.sla_seconds IS NOT NULL GROUP BY o.stage) w
        WHERE f.stage = w.stage
    """)
    con.execute("DROP TABLE km_counts; DROP TABLE km")


def _insert(con: duckdb.DuckDBPyConnection, table: str, columns: str, rows: Sequence[Sequence[object]]) -> None:
    """Rows computed in Python into a new table, column by column in one statement
    (``executemany`` inserts a row per call: 24 s for the 300,000-touch clinic's curves)."""
    con.execute(f"CREATE OR REPLACE TABLE {table} ({columns})")
    if rows:
        types = [kind for _, kind, *_ in con.execute(f"DESCRIBE {table}").fetchall()]  # as DuckDB parsed them
        unnests = ", ".join(f"unnest(${n}::{kind}[])" for n, kind in enumerate(types, start=1))
        con.execute(f"INSERT INTO {table} SELECT {unnests}", [list(values) for values in zip(*rows, strict=True)])
