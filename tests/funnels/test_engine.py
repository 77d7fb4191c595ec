"""The funnel engine on small hand-made journeys, and against ClickHouse's windowFunnel
(chdb, in-process) on randomized data with many equal timestamps."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import chdb
import duckdb
import pytest
from pydantic import ValidationError

from journey.errors import InputError
from journey.funnels.engine import customer_levels, dropped_at, level_counts, run_funnel
from journey.funnels.model import Breakdown, FunnelRequest, parse_exclusion, parse_step

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
DDL = ("CREATE TABLE touchpoints (customer_id VARCHAR, activity VARCHAR, stage VARCHAR, "
       "occurred_at TIMESTAMPTZ, seq BIGINT, channel VARCHAR)")


def table(rows: list[tuple[str, str, int, str | None]]) -> duckdb.DuckDBPyConnection:
    """(customer, activity, seconds after T0, channel) -> a touchpoints-shaped table."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(DDL)
    con.executemany("INSERT INTO touchpoints VALUES (?, ?, NULL, ?, NULL, ?)",
                    [(c, a, T0 + timedelta(seconds=s), ch) for c, a, s, ch in rows])
    con.execute("CREATE OR REPLACE TABLE touchpoints AS SELECT * EXCLUDE (seq), row_number() OVER "
                "(PARTITION BY customer_id ORDER BY occurred_at, rowid) AS seq FROM touchpoints")
    return con


def request(steps: str, window: int = 100, **options: object) -> FunnelRequest:
    return FunnelRequest(steps=[parse_step(s) for s in steps.split(",")], window_seconds=window, **options)


def levels(con: duckdb.DuckDBPyConnection, req: FunnelRequest) -> dict[str, int]:
    name = customer_levels(con, req)
    return dict(con.execute(f"SELECT customer_id, level FROM {name} WHERE NOT excluded").fetchall())


JOURNEYS = [
    ("a", "click", 0, "seo"), ("a", "call", 10, "phone"), ("a", "booking", 20, None),
    ("b", "click", 0, "social"), ("b", "call", 150, None),  # outside the window
    ("c", "click", 0, "seo"), ("c", "form", 5, None), ("c", "call", 6, None),  # a touch between
    ("d", "call", 0, None), ("d", "click", 10, "seo"), ("d", "call", 110, None),  # boundary: 100 s exactly
    ("e", "click", 0, "social"), ("e", "click", 200, "seo"), ("e", "call", 250, None), ("e", "booking", 290, None),
]


def test_ordered_levels_window_inclusive_and_new_attempts() -> None:
    con = table(JOURNEYS)
    assert levels(con, request("click,call,booking")) == {"a": 3, "b": 1, "c": 2, "d": 2, "e": 3}


def test_strict_breaks_on_any_other_touch_and_unordered_ignores_order() -> None:
    con = table(JOURNEYS)
    assert levels(con, request("click,call,booking", mode="strict")) == {"a": 3, "b": 1, "c": 1, "d": 2, "e": 3}
    # unordered: d's call at 0 and click at 10 count in any order
    unordered = levels(con, request("click,call", mode="unordered"))
    assert unordered["d"] == 2 and unordered["b"] == 1


def test_step_results_counts_conversions_times_and_histogram() -> None:
    result = run_funnel(table(JOURNEYS), request("click,call,booking"))
    assert [s.count for s in result.steps] == [5, 4, 2]
    assert [s.dropped for s in result.steps] == [1, 2, 0]
    assert result.steps[1].conversion_from_previous == pytest.approx(0.8)
    assert result.steps[2].conversion_from_first == pytest.approx(0.4)
    # a: 10 s click->call; c: 6; d: 100; e: 50 (the attempt that reached booking)
    assert result.steps[1].median_seconds_to_convert == pytest.approx(30.0)
    assert result.steps[2].median_seconds_to_convert == pytest.approx(25.0)  # a: 10, e: 40
    assert sum(b.customers for b in result.histogram) == 2
    assert result.histogram[1].customers == 1 and result.histogram[0].customers == 1  # 20 s and 90 s


def test_exclusion_removes_the_customer_instead_of_counting_a_drop() -> None:
    con = table(JOURNEYS)
    req = request("click,call", exclusions=[parse_exclusion("form:0-1")])
    result = run_funnel(con, req)
    assert result.excluded == 1 and [s.count for s in result.steps] == [4, 3]
    assert "c" not in dropped_at(con, req, 0)


def test_breakdowns_first_last_and_step_value() -> None:
    con = table(JOURNEYS)
    first = run_funnel(con, request("click,call", breakdown=Breakdown(column="channel", touch="first")))
    # first non-empty channel: a seo, b social, c seo, d seo (its first call has none), e social
    assert {k: [s.count for s in v] for k, v in first.breakdown.items()} == {"seo": [3, 3], "social": [2, 1]}
    step = run_funnel(con, request("click,call", breakdown=Breakdown(column="channel", touch="step", step=0)))
    by_step = {k: [s.count for s in v] for k, v in step.breakdown.items()}
    # the click of the counted attempt: a seo, b social, c seo, d seo, e seo (the 200 s click)
    assert by_step == {"seo": [4, 4], "social": [1, 0]}
    last = run_funnel(con, request("click,call", breakdown=Breakdown(column="channel", touch="last")))
    assert {k: [s.count for s in v] for k, v in last.breakdown.items()} == {"seo": [3, 3], "social": [1, 0],
                                                                             "phone": [1, 1]}


def test_dropped_at_lists_pseudonymous_ids() -> None:
    con = table(JOURNEYS)
    assert dropped_at(con, request("click,call,booking"), 0) == ["b"]
    assert dropped_at(con, request("click,call,booking"), 1) == ["c", "d"]
    with pytest.raises(InputError):
        dropped_at(con, request("click,call,booking"), 2)


def test_injection_strings_are_values_or_refused() -> None:
    con = table(JOURNEYS)
    evil = "call'; DROP TABLE touchpoints; --"
    assert levels(con, request(f"click,{evil}")) == {"a": 1, "b": 1, "c": 1, "d": 1, "e": 1}
    assert con.execute("SELECT count(*) FROM touchpoints").fetchone()[0] == len(JOURNEYS)
    with pytest.raises(ValidationError):
        Breakdown(column="channel; DROP TABLE touchpoints")
    with pytest.raises(InputError):
        customer_levels(con, request("click,call"), table="touchpoints; DROP TABLE x")
    with pytest.raises(InputError):
        parse_exclusion("form")


# -- the ClickHouse oracle -------------------------------------------------------------

def random_rows(seed: int) -> list[tuple[str, str, str, int]]:
    """Many equal timestamps (a small time range), touches matching two steps (an
    activity step and a stage step on the same touch), repeated steps."""
    rng = random.Random(seed)
    rows = []
    for c in range(rng.randint(20, 120)):
        for _ in range(rng.randint(0, 14)):
            rows.append((f"c{c}", rng.choice("abcde"), rng.choice(["x", "y", "z"]), rng.randint(0, 60)))
    return rows


def duckdb_of(rows: list[tuple[str, str, str, int]]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(DDL)
    con.executemany("INSERT INTO touchpoints VALUES (?, ?, ?, ?, NULL, NULL)",
                    [(c, a, st, T0 + timedelta(seconds=s)) for c, a, st, s in rows])
    return con


def ours(rows: list[tuple[str, str, str, int]], steps: str, window: int) -> dict[str, int]:
    return levels(duckdb_of(rows), request(steps, window))


def clickhouse(rows: list[tuple[str, str, str, int]], steps: str, window: int, tmp: Path) -> dict[str, int]:
    path = tmp / "rows.parquet"
    con = duckdb.connect()
    con.execute("CREATE TABLE r (customer_id VARCHAR, activity VARCHAR, stage VARCHAR, ts UINTEGER)")
    con.executemany("INSERT INTO r VALUES (?, ?, ?, ?)", [(c, a, st, 1_740_787_200 + s) for c, a, st, s in rows])
    con.execute(f"COPY r TO '{path}' (FORMAT parquet)")
    conditions = ", ".join(f"stage = '{s[6:]}'" if s.startswith("stage:") else f"activity = '{s}'"
                           for s in steps.split(","))
    result = chdb.query(f"SELECT customer_id, windowFunnel({window})(toDateTime(ts), {conditions}) "
                        f"FROM file('{path}', Parquet) GROUP BY customer_id", "CSV")
    found = {}
    for line in str(result).strip().splitlines():
        customer, level = line.replace('"', "").split(",")
        found[customer] = int(level)
    return found


@pytest.mark.parametrize("seed", range(12))
def test_ordered_equals_clickhouse_window_funnel(seed: int, tmp_path: Path) -> None:
    rng = random.Random(1000 + seed)
    rows = random_rows(seed)
    # distinct steps: where a step repeats, we follow PostHog (a touch per repetition, tests/funnels/
    # test_posthog_scenarios.py) and windowFunnel lets one touch serve both
    steps = rng.choice(["a,b,c", "a,b,c,d", "a,stage:x,b", "stage:y,a,b", "a,b", "b,stage:z,c,stage:x"])
    window = rng.choice([0, 3, 10, 30])
    expected = clickhouse(rows, steps, window, tmp_path)
    found = ours(rows, steps, window)
    assert {c: found.get(c, 0) for c in expected} == expected
    assert any(level > 1 for level in expected.values())
    counted = Counter(level for level in expected.values() if level)
    assert level_counts(duckdb_of(rows), request(steps, window)) == dict(sorted(counted.items()))


@pytest.mark.parametrize("exclusions", [[], [parse_exclusion("booking:0-1")]])
def test_the_earliest_of_the_deepest_attempts_gives_the_times(exclusions: list) -> None:
    # two attempts reach the call: clicks at 60 and 0 (stored out of order); the earliest counts
    con = table([("f", "click", 60, None), ("f", "click", 0, None), ("f", "call", 70, None),
                 ("g", "click", 0, None), ("g", "click", 30, None), ("g", "call", 120, None)])
    result = run_funnel(con, request("click,call", exclusions=exclusions))
    assert result.steps[1].count == 2
    assert result.steps[1].mean_seconds_to_convert == pytest.approx((70 + 90) / 2)  # g: only the 30 s click reaches
