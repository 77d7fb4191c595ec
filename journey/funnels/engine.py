"""The funnel engine: each customer's deepest level, computed in DuckDB SQL.

Semantics (docs/funnels.md): every event of the first step starts an attempt; the
window runs from the attempt's start and is inclusive at its end; a customer counts at
the deepest step any attempt reaches (ties: the earliest such attempt).

- ``ordered``: step k+1 is the first step-(k+1) touch at or after step k's time
  (other touches may come between). Equal timestamps are in order, and one touch may
  serve two consecutive steps: ClickHouse's ``windowFunnel(window)`` exactly.
- ``strict``: step k+1 must be the customer's very next touch (by ``seq``).
- ``unordered``: an attempt starts at any step's touch; step k is reached when steps
  1..k all happen within the window, in any order.

Only the touches matching a step are read for ``ordered``; the work is a hash
aggregation into per-customer lists and list functions over them, no Python loop.
Step names are bound parameters; the table name and breakdown column are checked
against fixed patterns and lists.
"""

from __future__ import annotations

import re
from typing import Any

import duckdb

from journey.errors import InputError
from journey.funnels.model import (
    BREAKDOWN_COLUMNS,
    FunnelRequest,
    FunnelResult,
    HistogramBucket,
    Step,
    StepResult,
)

__all__ = ["HISTOGRAM_EDGES", "customer_levels", "dropped_at", "level_counts", "run_funnel"]

HISTOGRAM_EDGES = (60, 300, 900, 3600, 6 * 3600, 86400, 3 * 86400, 7 * 86400, 14 * 86400, 30 * 86400)
"""Upper bounds (seconds) of the time-to-convert histogram; the last bucket is open."""

_TABLE = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")
_STEP_COLUMN = {"activity": "activity", "stage": "stage"}
RESULT_TABLE = "funnel_customers"


class _Params:
    """Bound parameters named ``$f0``, ``$f1``...: the only way step names reach SQL."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        name = f"f{len(self.values)}"
        self.values[name] = value
        return f"${name}"

    def match(self, step: Step) -> str:
        return f"{_STEP_COLUMN[step.kind]} = {self.bind(step.name)}"


def customer_levels(con: duckdb.DuckDBPyConnection, request: FunnelRequest, table: str = "touchpoints") -> str:
    """Build the temp table ``funnel_customers`` (customer_id, level, excluded, start,
    r1..rN: when step k was reached, epoch microseconds) and return its name."""
    sql, params = _levels_sql(request, table)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {RESULT_TABLE} AS {sql}", params)
    return RESULT_TABLE


def level_counts(con: duckdb.DuckDBPyConnection, request: FunnelRequest, table: str = "touchpoints") -> dict[int, int]:
    """Customers per deepest level (1..N; excluded customers left out), nothing kept:
    what ClickHouse's ``windowFunnel`` answers, for comparing the two."""
    sql, params = _levels_sql(request, table)
    rows = con.execute(f"SELECT level, count(*) FROM ({sql}) WHERE level > 0 GROUP BY level", params).fetchall()
    return dict(sorted(rows))


def _levels_sql(request: FunnelRequest, table: str) -> tuple[str, dict[str, Any]]:
    if not _TABLE.match(table):
        raise InputError(f"{table!r} is not a table name")
    params = _Params()
    window = request.window_seconds * 1_000_000  # an int from the validated request
    build = _ordered if request.mode == "ordered" else _by_attempts
    return build(request, table, params, window), params.values


def _by_attempts(request: FunnelRequest, table: str, params: _Params, window: int) -> str:
    """strict and unordered: one row per attempt (window functions), then the best per customer."""
    n = len(request.steps)
    attempts = (_strict if request.mode == "strict" else _unordered)(request, table, params, window)
    reached = ", ".join(f"greatest({', '.join(f't{j}' for j in range(1, k + 1))}) AS r{k}" for k in range(1, n + 1))
    exclusions, lists = _exclusions(request, table, params, window)
    keep = "{" + ", ".join(["'level': level", "'start': start"] + [f"'r{k}': r{k}" for k in range(1, n + 1)]) + "}"
    return f"""
    WITH attempts AS ({attempts}),
    scored AS (
        SELECT a.customer_id, a.start, {reached},
            {' + '.join(f'(t{k} IS NOT NULL)::INTEGER' for k in range(1, n + 1))} AS level,
            {exclusions} AS excluded
        FROM attempts a {lists}
    ), best AS (
        SELECT customer_id, arg_max({keep}, [level, -start]) FILTER (WHERE NOT excluded) AS kept,
               bool_and(excluded) AS excluded
        FROM scored GROUP BY customer_id
    )
    SELECT customer_id, coalesce(kept.level, 0) AS level, excluded, kept.start AS start,
        {', '.join(f'kept.r{k} AS r{k}' for k in range(1, n + 1))}
    FROM best
    """


def _ordered(request: FunnelRequest, table: str, params: _Params, window: int) -> str:
    """Per customer, lists of each step's times; for every first-step time (an attempt)
    the chain of first matches at or after the previous step, within the window."""
    n = len(request.steps)
    coded = [(k, step) for k, step in enumerate(request.steps, start=1)]
    coded += [(100 + j, x.step) for j, x in enumerate(request.exclusions)]
    # step names reach the scan through a join with a small table of bound values (a
    # parameter compared on every row would cost a quarter of the time)
    matched = " UNION ALL ".join(
        f"SELECT t.customer_id, t.occurred_at, s.k FROM {table} t JOIN (SELECT unnest({params.bind([step.name for _, step in group])}) "
        f"AS name, unnest({params.bind([k for k, _ in group])}) AS k) s ON t.{_STEP_COLUMN[kind]} = s.name "
        "WHERE t.customer_id IS NOT NULL"
        for kind, group in _by_kind(coded).items())
    # only the starts are sorted (the earliest attempt wins a tie); later steps take the
    # smallest qualifying time, which needs no order
    lists = ", ".join([f"{'list_sort(' if k == 1 else '('}list(epoch_us(occurred_at)) FILTER (WHERE k = {k})) AS l{k}"
                       for k in range(1, n + 1)]
                      + [f"list(epoch_us(occurred_at)) FILTER (WHERE k = {100 + j}) AS x{j}"
                         for j in range(len(request.exclusions))])
    # a step that repeats an earlier one needs a touch of its own (PostHog's semantics for
    # "visit, visit"): strictly after the previous step; distinct steps allow a tie (windowFunnel's)
    after = {k: ">" if step in request.steps[:k - 1] else ">=" for k, step in coded if k <= n}
    chain = [f"c1 AS (SELECT *, l1 AS t1 FROM g)",
             f"c2 AS (SELECT *, list_transform(l1, lambda s: list_min(list_filter(l2, lambda x: x {after[2]} s "
             f"AND x <= s + {window}))) AS t2 FROM c1)"] if n > 1 else [f"c1 AS (SELECT *, l1 AS t1 FROM g)"]
    for k in range(3, n + 1):
        pick = f"list_min(list_filter(l{k}, lambda x: x {after[k]} y AND x <= l1[i] + {window}))"
        chain.append(f"c{k} AS (SELECT *, list_transform(t{k - 1}, lambda y, i: "
                     f"CASE WHEN y IS NOT NULL THEN {pick} END) AS t{k} FROM c{k - 1})")
    best = _best_attempt(request, n, window) if request.exclusions else _deepest_attempt(n)
    return f"""
    WITH g AS (SELECT customer_id, {lists} FROM ({matched}) GROUP BY customer_id HAVING l1 IS NOT NULL),
    {', '.join(chain)},
    {best}
    SELECT customer_id, greatest(top, 0) AS level, top < 0 AS excluded, l1[i] AS start,
        {', '.join(f't{k}[i] AS r{k}' for k in range(1, n + 1))}
    FROM best
    """


def _deepest_attempt(n: int) -> str:
    """Without exclusions: the deepest level is the deepest step any attempt reached, and
    its earliest attempt is the one with the smallest time at that step (each step's
    time never decreases with a later start)."""
    top = " ".join(f"WHEN list_count(t{k}) > 0 THEN {k}" for k in range(n, 1, -1))
    deepest = " ".join(f"WHEN {k} THEN t{k}" for k in range(n, 1, -1))
    return f"""deepest AS (SELECT *, CASE {top} ELSE 1 END AS top FROM c{n}),
    picked AS (SELECT *, CASE top {deepest} ELSE t1 END AS at_top FROM deepest),
    best AS (SELECT * EXCLUDE (at_top), list_position(at_top, list_min(at_top)) AS i FROM picked)"""


def _best_attempt(request: FunnelRequest, n: int, window: int) -> str:
    """With exclusions: each attempt's level, -1 when excluded; the earliest deepest wins."""
    depth = " + ".join(["1"] + [f"(t{k}[i] IS NOT NULL)::INTEGER" for k in range(2, n + 1)])
    excluded = " OR ".join(
        f"coalesce(len(list_filter(x{j}, lambda x: x > t{x.after + 1}[i] AND "
        f"x < coalesce(t{x.before + 1}[i], s + {window} + 1))) > 0, false)"
        for j, x in enumerate(request.exclusions))
    return f"""scored AS (SELECT *, list_transform(l1, lambda s, i: CASE WHEN {excluded} THEN -1 ELSE {depth} END)
               AS levels FROM c{n}),
    best AS (SELECT *, list_max(levels) AS top, list_position(levels, list_max(levels)) AS i FROM scored)"""


def _by_kind(coded: list[tuple[int, Step]]) -> dict[str, list[tuple[int, Step]]]:
    groups: dict[str, list[tuple[int, Step]]] = {}
    for k, step in coded:
        groups.setdefault(step.kind, []).append((k, step))
    return groups


def _masks(request: FunnelRequest, params: _Params) -> str:
    return " | ".join(f"(CASE WHEN {params.match(step)} THEN {1 << k} ELSE 0 END)"
                      for k, step in enumerate(request.steps))


def _strict(request: FunnelRequest, table: str, params: _Params, window: int) -> str:
    n = len(request.steps)
    leads = ", ".join(f"lead(mask, {k - 1}) OVER o AS m{k}, lead(ts, {k - 1}) OVER o AS u{k}" for k in range(2, n + 1))
    steps = ", ".join(
        f"CASE WHEN t{k - 1} IS NOT NULL AND m{k} & {1 << (k - 1)} <> 0 AND u{k} <= t1 + {window} THEN u{k} END AS t{k}"
        for k in range(2, n + 1))
    return f"""
        WITH e AS (SELECT customer_id, seq, epoch_us(occurred_at) AS ts, {_masks(request, params)} AS mask
                   FROM {table} WHERE customer_id IS NOT NULL),
        w AS (SELECT customer_id, ts, mask, {leads} FROM e WINDOW o AS (PARTITION BY customer_id ORDER BY seq))
        SELECT customer_id, ts AS start, ts AS t1, {steps} FROM w WHERE mask & 1 <> 0
    """


def _unordered(request: FunnelRequest, table: str, params: _Params, window: int) -> str:
    """PostHog's unordered funnel: from each touch of any step, the distinct steps done
    within the window; level k = any k of them, reached when the k-th was first done."""
    n = len(request.steps)
    firsts = ", ".join(f"min(CASE WHEN mask & {1 << (k - 1)} <> 0 THEN ts END) OVER r AS f{k}" for k in range(1, n + 1))
    steps = ", ".join(f"done[{k}] AS t{k}" for k in range(1, n + 1))
    return f"""
        WITH e AS (SELECT * FROM (SELECT customer_id, epoch_us(occurred_at) AS ts, {_masks(request, params)} AS mask
                   FROM {table} WHERE customer_id IS NOT NULL) WHERE mask <> 0),
        w AS (SELECT customer_id, ts, {firsts} FROM e
              WINDOW r AS (PARTITION BY customer_id ORDER BY ts RANGE BETWEEN CURRENT ROW AND {window} FOLLOWING)),
        d AS (SELECT customer_id, ts, list_sort(list_filter([{', '.join(f'f{k}' for k in range(1, n + 1))}],
                                                            lambda x: x IS NOT NULL)) AS done FROM w)
        SELECT customer_id, ts AS start, {steps} FROM d
    """


def _exclusions(request: FunnelRequest, table: str, params: _Params, window: int) -> tuple[str, str]:
    """The ``excluded`` expression of an attempt and the join bringing each exclusion's
    touch times (``x0``, ``x1``...) to it."""
    if not request.exclusions:
        return "false", ""
    tests, joins = [], []
    for j, exclusion in enumerate(request.exclusions):
        after, before = f"t{exclusion.after + 1}", f"t{exclusion.before + 1}"
        joins.append(f"LEFT JOIN (SELECT customer_id, list(epoch_us(occurred_at)) AS x{j} FROM {table} "
                     f"WHERE customer_id IS NOT NULL AND {params.match(exclusion.step)} GROUP BY customer_id) "
                     f"x{j} ON x{j}.customer_id = a.customer_id")
        tests.append(f"coalesce(len(list_filter(x{j}.x{j}, lambda x: x > {after} AND "
                     f"x < coalesce({before}, a.start + {window} + 1))) > 0, false)")
    return " OR ".join(tests), " ".join(joins)


def run_funnel(con: duckdb.DuckDBPyConnection, request: FunnelRequest, table: str = "touchpoints") -> FunnelResult:
    """The whole answer: per step counts, conversions and times, the histogram, breakdowns."""
    customer_levels(con, request, table)
    names = [step.label for step in request.steps]
    [steps] = _step_results(con, names, RESULT_TABLE).values()
    excluded = con.execute(f"SELECT count(*) FROM {RESULT_TABLE} WHERE excluded").fetchone()[0]
    breakdown = None
    if request.breakdown is not None:
        _breakdown_values(con, request, table)
        breakdown = _step_results(con, names, f"{RESULT_TABLE}_by", "coalesce(value, '(none)')")
    return FunnelResult(mode=request.mode, window_seconds=request.window_seconds, steps=steps,
                        excluded=excluded, histogram=_histogram(con, len(names)), breakdown=breakdown)


def _step_results(con: duckdb.DuckDBPyConnection, names: list[str], source: str,
                  group: str = "'all'") -> dict[str, tuple[StepResult, ...]]:
    """Per-step results for each value of ``group`` (an expression of ours)."""
    n = len(names)
    columns = []
    for k in range(1, n + 1):
        columns.append(f"count(*) FILTER (WHERE level >= {k})")
        gap = f"(r{k} - r{k - 1}) / 1e6" if k > 1 else "NULL::DOUBLE"
        columns.append(f"avg({gap}) FILTER (WHERE level >= {k})")
        columns.append(f"median({gap}) FILTER (WHERE level >= {k})")
    rows = con.execute(f"SELECT {group} AS g, {', '.join(columns)} FROM {source} WHERE NOT excluded "
                       "GROUP BY ALL ORDER BY g").fetchall()
    if not rows:
        rows = [("all",) + (0, None, None) * n]
    return {row[0]: _results(names, row[1:]) for row in rows}


def _results(names: list[str], row: tuple[Any, ...]) -> tuple[StepResult, ...]:
    n = len(names)
    counts = [int(row[3 * i]) for i in range(n)]
    results = []
    for i, name in enumerate(names):
        count = counts[i]
        following = counts[i + 1] if i + 1 < n else None
        results.append(StepResult(
            index=i, name=name, count=count, converted=following,
            dropped=count - following if following is not None else 0,
            conversion_from_previous=_ratio(count, counts[i - 1]) if i else _ratio(count, count),
            conversion_from_first=_ratio(count, counts[0]),
            mean_seconds_to_convert=row[3 * i + 1], median_seconds_to_convert=row[3 * i + 2]))
    return tuple(results)


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _histogram(con: duckdb.DuckDBPyConnection, n: int) -> tuple[HistogramBucket, ...]:
    edges = list(HISTOGRAM_EDGES)
    counts = con.execute(
        f"SELECT list_position($edges, (SELECT min(e) FROM unnest($edges) u(e) WHERE e >= (r{n} - start) / 1e6)) "
        f"AS bucket, count(*) FROM {RESULT_TABLE} WHERE NOT excluded AND level = {n} GROUP BY bucket",
        {"edges": edges}).fetchall()
    by_bucket = {bucket: count for bucket, count in counts}
    buckets = [HistogramBucket(up_to_seconds=edge, customers=by_bucket.get(i, 0)) for i, edge in enumerate(edges, 1)]
    buckets.append(HistogramBucket(up_to_seconds=None, customers=by_bucket.get(None, 0)))
    return tuple(buckets)


def _breakdown_values(con: duckdb.DuckDBPyConnection, request: FunnelRequest, table: str) -> None:
    """``funnel_customers_by``: the levels with each customer's breakdown value."""
    breakdown = request.breakdown
    assert breakdown is not None
    column = BREAKDOWN_COLUMNS[BREAKDOWN_COLUMNS.index(breakdown.column)]  # the SQL name is ours
    params = _Params()
    if breakdown.touch == "step":
        k = breakdown.step + 1
        values = (f"SELECT f.customer_id, any_value(t.{column}) AS value FROM {RESULT_TABLE} f "
                  f"JOIN {table} t ON t.customer_id = f.customer_id AND epoch_us(t.occurred_at) = f.r{k} "
                  f"AND t.{params.match(request.steps[breakdown.step])} GROUP BY f.customer_id")
    else:
        pick = "arg_min" if breakdown.touch == "first" else "arg_max"
        values = (f"SELECT customer_id, {pick}({column}, seq) FILTER (WHERE {column} IS NOT NULL) AS value "
                  f"FROM {table} WHERE customer_id IN (SELECT customer_id FROM {RESULT_TABLE}) GROUP BY customer_id")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {RESULT_TABLE}_by AS SELECT f.*, v.value FROM {RESULT_TABLE} f "
                f"LEFT JOIN ({values}) v USING (customer_id)", params.values)


def dropped_at(con: duckdb.DuckDBPyConnection, request: FunnelRequest, step: int,
               table: str = "touchpoints") -> list[str]:
    """Pseudonymous ids of the customers who reached step ``step`` (0-based) and not the
    next one: the call list of a drop-off (contact details are looked up elsewhere)."""
    if not 0 <= step < len(request.steps) - 1:
        raise InputError(f"--dropped-at {step}: customers can drop at steps 0..{len(request.steps) - 2}")
    customer_levels(con, request, table)
    return [c for (c,) in con.execute(
        f"SELECT customer_id FROM {RESULT_TABLE} WHERE NOT excluded AND level = {step + 1} ORDER BY customer_id"
    ).fetchall()]
