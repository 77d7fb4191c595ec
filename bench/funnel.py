"""Funnel benchmark: a 3-step ordered funnel (ad_click -> call -> booking, 14-day
window) over N touches, journey's engine beside ClickHouse's ``windowFunnel`` (chdb,
in-process) in the same run, on the same rows; then the points of failure over them.

The touches are synthetic, generated straight into a DuckDB ``touchpoints`` table of
the projection's shape and a Parquet file of the same rows (ingest would take hours
at this size and is measured elsewhere). Timestamps are whole seconds, so
ClickHouse's ``DateTime`` sees exactly what journey sees. Each measurement runs in
its own process; runs are interleaved; medians are printed with the ratio to
ClickHouse, and the level counts of every run must be identical.

Run:  python bench/funnel.py [--touches 10000000] [--runs 3]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from _harness import arguments, emit, interleave, measure, report, work_dir

STEPS = ("ad_click", "call", "booking")
WINDOW = 14 * 86400

_GENERATE = """
CREATE TABLE touchpoints AS
WITH r AS (
    SELECT i, hash(i * 7919 + 3) AS h, (['ad_click', 'ad_click', 'call', 'call', 'booking', 'visit', 'visit',
        'message', 'message', 'payment', 'review', 'consent'])[1 + CAST(hash(i) % 12 AS INTEGER)] AS type
    FROM range($touches) t(i)
), t AS (
    SELECT 'P' || lpad(CAST(h % $customers AS VARCHAR), 8, '0') AS customer_id, type, i,
        TIMESTAMPTZ '2025-01-01 00:00:00+00' + to_seconds(CAST(hash(i + 1) % (365 * 86400) AS BIGINT)) AS occurred_at,
        CAST(hash(i + 2) % 100 AS INTEGER) AS roll
    FROM r
)
SELECT 'e' || i AS event_id, customer_id, type, type AS activity,
    CASE type WHEN 'ad_click' THEN 'awareness' WHEN 'call' THEN 'contact' WHEN 'booking' THEN 'booking'
        WHEN 'visit' THEN CASE WHEN roll < 40 THEN 'first_visit' ELSE 'treatment' END
        WHEN 'payment' THEN 'treatment' WHEN 'message' THEN 'retention' WHEN 'review' THEN 'advocacy' END AS stage,
    CASE WHEN type IN ('ad_click', 'call') THEN (['search_ads', 'seo', 'social', 'display', 'offline'])[1 + roll % 5] END AS channel,
    'bench' AS source, occurred_at, occurred_at AS recorded_at, i AS position,
    row_number() OVER (PARTITION BY customer_id ORDER BY occurred_at, i) AS seq,
    CASE WHEN type IN ('visit', 'payment') THEN CAST(1500 + roll * 100 AS DECIMAL(21, 6)) END AS amount,
    CASE WHEN type IN ('visit', 'payment') THEN 'RUB' END AS currency,
    CASE WHEN type IN ('booking', 'visit') THEN (['Dr. Petrov', 'Dr. Ivanova', 'Dr. Volkov'])[1 + roll % 3] END AS doctor,
    CASE WHEN type = 'call' THEN (['Anna', 'Olga', 'Irina', 'Maria', 'Elena'])[1 + roll % 5] END AS administrator,
    (['Tverskaya', 'Maryino'])[1 + roll % 2] AS branch,
    NULL::VARCHAR AS booking_id, NULL::VARCHAR AS visit_id, NULL::VARCHAR AS campaign,
    CASE WHEN type IN ('call', 'message') THEN 'inbound' END AS direction,
    CASE WHEN type = 'message' THEN 'recall' END AS purpose,
    CASE WHEN type = 'call' THEN roll >= 10 END AS answered,
    NULL::VARCHAR AS outcome, NULL::VARCHAR AS status,
    CASE WHEN type = 'review' THEN CAST(1 + roll % 5 AS INTEGER) END AS rating,
    NULL::JSON AS properties, true AS identified
FROM t
"""


def build(work: Path, touches: int) -> tuple[Path, Path]:
    """The DuckDB file and the Parquet file of the same rows (kept for later runs)."""
    import duckdb

    database, parquet = work / f"funnel-{touches}.duckdb", work / f"funnel-{touches}.parquet"
    if database.exists() and parquet.exists():
        return database, parquet
    partial = database.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    started = time.perf_counter()
    con = duckdb.connect(str(partial))
    con.execute("SET enable_progress_bar = false")
    con.execute(_GENERATE.replace("$touches", str(touches)).replace("$customers", str(max(touches // 10, 1))))
    con.execute(f"COPY touchpoints TO '{parquet}' (FORMAT parquet)")
    con.close()
    partial.rename(database)
    print(f"generated {touches:,} touches in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return database, parquet


def ours(database: str, source: str) -> dict[str, float]:
    """journey's engine; ``source`` is ``table`` (the DuckDB file) or ``parquet``."""
    import duckdb

    from journey.funnels.engine import level_counts
    from journey.funnels.model import FunnelRequest, Step

    if source == "table":
        con = duckdb.connect(database, read_only=True)
    else:
        con = duckdb.connect()
        con.execute(f"CREATE VIEW touchpoints AS SELECT * FROM read_parquet('{database}')")
    con.execute("SET enable_progress_bar = false")
    request = FunnelRequest(steps=[Step(name=s) for s in STEPS], window_seconds=WINDOW)
    start = time.perf_counter()
    levels = level_counts(con, request)
    seconds = time.perf_counter() - start
    return {"touches": _count(con), "seconds": seconds, **{f"level_{k}": v for k, v in levels.items()}}


def clickhouse(parquet: str, _source: str) -> dict[str, float]:
    import chdb

    conditions = ", ".join(f"activity = '{s}'" for s in STEPS)
    chdb.query("SELECT 1", "CSV")  # the engine's start-up is not the funnel's time
    start = time.perf_counter()
    result = chdb.query(
        f"SELECT level, count() FROM (SELECT customer_id, windowFunnel({WINDOW})(toDateTime(occurred_at), "
        f"{conditions}) AS level FROM file('{parquet}', Parquet) GROUP BY customer_id) "
        "WHERE level > 0 GROUP BY level", "CSV")
    seconds = time.perf_counter() - start
    levels = dict(tuple(int(x) for x in line.split(",")) for line in str(result).split())
    touches = int(str(chdb.query(f"SELECT count() FROM file('{parquet}', Parquet)", "CSV")).strip())
    return {"touches": touches, "seconds": seconds, **{f"level_{k}": v for k, v in levels.items()}}


def failures(database: str, _source: str) -> dict[str, float]:
    """Points of failure (stage_funnel, failure_points, failure_reasons, stage_correlations)."""
    import duckdb

    from journey.projections.failure import write_failure_tables
    from journey.projections.stage_model import default_stage_model

    con = duckdb.connect(database)
    con.execute("SET enable_progress_bar = false")
    start = time.perf_counter()
    con.begin()
    write_failure_tables(con, default_stage_model())
    points = con.execute("SELECT count(*) FROM failure_points").fetchone()[0]
    con.rollback()
    return {"touches": _count(con), "seconds": time.perf_counter() - start, "failure_points": points}


def _count(con: object) -> int:
    return con.execute("SELECT count(*) FROM touchpoints").fetchone()[0]  # type: ignore[attr-defined]


def child(kind: str, path: str, source: str) -> None:
    emit({"ours": ours, "clickhouse": clickhouse, "failures": failures}[kind](path, source), "touches")


def main() -> None:
    args = arguments(10_000_000, child)
    if args is None:
        return
    work = work_dir()
    database, parquet = build(work, args.touches)
    print(f"{args.touches:,} touches; funnel {' -> '.join(STEPS)}, window {WINDOW // 86400} days, ordered; "
          f"{args.runs} runs, medians")
    results = interleave(args.runs, {
        "clickhouse windowFunnel": lambda _tmp: measure(__file__, "clickhouse", str(parquet), "-"),
        "journey (DuckDB table)": lambda _tmp: measure(__file__, "ours", str(database), "table"),
        "journey (same Parquet)": lambda _tmp: measure(__file__, "ours", str(parquet), "parquet"),
    }, work)
    report(results, "clickhouse windowFunnel", "touches/s")
    levels = {name: [{k: r[k] for k in r if k.startswith("level_")} for r in runs] for name, runs in results.items()}
    distinct = {repr(sorted(run.items())) for runs in levels.values() for run in runs}
    assert len(distinct) == 1, f"level counts differ: {levels}"
    print(f"level counts identical in every run: {next(iter(levels.values()))[0]}")
    for name, runs in results.items():
        listed = ", ".join(f"{r['seconds']:.3f}" for r in runs)
        print(f"{name:24} median {statistics.median(r['seconds'] for r in runs):.3f} s  [{listed}]")
    failure = interleave(args.runs, {"points of failure": lambda _tmp: measure(
        __file__, "failures", str(database), "-")}, work)["points of failure"]
    listed = ", ".join(f"{r['seconds']:.2f}" for r in failure)
    print(f"points of failure (4 tables, default stage model): median "
          f"{statistics.median(r['seconds'] for r in failure):.2f} s [{listed}]")


if __name__ == "__main__":
    main()
