"""Journey-map benchmark: the activity-level map of a 1,000,000-touch projection
(edges with counts, mean and median durations; start and end counts; variants), built
by journey (DuckDB aggregates -> networkx) beside PM4Py's ``discover_dfg`` +
``discover_performance_dfg`` + ``get_variants`` on the same events in a pandas frame,
in the same run. Every round checks that both give identical results. A third
measurement writes the clinic report from the same projection (time, HTML size).

journey is measured two ways: ``projected``, the product path for the unfiltered map,
reads the aggregates the projector keeps (journey_edges/nodes/variants, recomputed at
each derive, whose cost the projection benchmark reports); ``counted`` computes them
from ``touchpoints`` with the SQL every filtered map uses.

The projection is real: demo touches (seed 11) ingested into SQLite by journey and
projected and published by the projector (built once, kept in bench/out/). PM4Py gets
the same touches (customer, activity, time, in ``seq`` order) as a frame that is
loaded and formatted *before* its timer starts; its time is the three calls only.

Run:  python bench/maps.py [--touches 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

from _harness import emit, measure, report, work_dir

SEP = "\x1f"
PEER = "PM4Py (3 calls)"
PROJECTED = "journey map (projected)"
COUNTED = "journey map (counted)"
REPORT = "journey report"


def build_snapshot(store_path: Path, snapshot: Path) -> None:
    """Project the store and publish the analyst snapshot (once)."""
    if snapshot.exists():
        return
    from journey.projections.projector import Projector
    from journey.crypto.pseudonym import Pseudonymiser
    from journey.projections.publish import publish
    from journey.store.event_store import EventStore
    from journey.store.sqlite import open_sqlite

    working = snapshot.with_name(snapshot.stem + ".projection.duckdb")
    working.unlink(missing_ok=True)
    projector = Projector(EventStore(open_sqlite(str(store_path))), working,
                          Pseudonymiser(b"benchmark-secret-0123456789"))
    projector.catch_up()
    projector.derive()
    publish(projector.con, snapshot)
    projector.close()
    working.unlink(missing_ok=True)


def _journey(snapshot: str, out: str, precomputed: bool = True) -> dict[str, float]:
    import duckdb

    from journey.maps.graph import EXIT, START, build_map

    con = duckdb.connect(snapshot, read_only=True)
    con.execute("SET enable_progress_bar = false")
    start = time.perf_counter()
    journey_map = build_map(con, "activity", precomputed=precomputed)
    seconds = time.perf_counter() - start
    g = journey_map.graph
    result = {
        "dfg": {f"{s}{SEP}{t}": d["transitions"] for s, t, d in journey_map.real_edges()},
        "mean": {f"{s}{SEP}{t}": d["mean_seconds"] for s, t, d in journey_map.real_edges()},
        "median": {f"{s}{SEP}{t}": d["median_seconds"] for s, t, d in journey_map.real_edges()},
        "starts": {t: n for _, t, n in g.out_edges(START, data="transitions")},
        "ends": {s: n for s, _, n in g.in_edges(EXIT, data="transitions")},
        "variants": {SEP.join(p): n for p, n in journey_map.variants},
    }
    Path(out).write_text(json.dumps(result))
    events = sum(d["events"] for n, d in g.nodes(data=True) if d["kind"] == "activity")
    return {"events": events, "seconds": seconds}


def _pm4py(snapshot: str, out: str) -> dict[str, float]:
    import warnings

    import duckdb
    import pm4py

    con = duckdb.connect(snapshot, read_only=True)
    loading = time.perf_counter()
    frame = con.execute("SELECT customer_id AS case_id, activity, occurred_at AS timestamp FROM touchpoints "
                        "WHERE customer_id IS NOT NULL ORDER BY customer_id, seq").df()
    con.close()
    frame = pm4py.format_dataframe(frame, case_id="case_id", activity_key="activity", timestamp_key="timestamp")
    loaded = time.perf_counter() - loading
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        dfg, starts, ends = pm4py.discover_dfg(frame)
        performance, _, _ = pm4py.discover_performance_dfg(frame)
        variants = pm4py.get_variants(frame)
        seconds = time.perf_counter() - start
    result = {
        "dfg": {f"{s}{SEP}{t}": n for (s, t), n in dfg.items()},
        "mean": {f"{s}{SEP}{t}": v["mean"] for (s, t), v in performance.items()},
        "median": {f"{s}{SEP}{t}": v["median"] for (s, t), v in performance.items()},
        "starts": dict(starts), "ends": dict(ends),
        "variants": {SEP.join(k): v if isinstance(v, int) else len(v) for k, v in variants.items()},
    }
    Path(out).write_text(json.dumps(result, default=int))
    return {"events": len(frame), "seconds": seconds, "load_seconds": loaded}


def _report(snapshot: str, out: str) -> dict[str, float]:
    import duckdb

    from journey.maps.report import write_report

    con = duckdb.connect(snapshot, read_only=True)
    con.execute("SET enable_progress_bar = false")
    events = con.execute("SELECT count(*) FROM touchpoints").fetchone()[0]
    start = time.perf_counter()
    page = write_report(con, Path(out))
    seconds = time.perf_counter() - start
    return {"events": events, "seconds": seconds, "html_bytes": page.stat().st_size}


def _counted(snapshot: str, out: str) -> dict[str, float]:
    return _journey(snapshot, out, precomputed=False)


def _build(store: str, snapshot: str, touches: int) -> dict[str, float]:
    from projection import build_store

    start = time.perf_counter()
    build_store(Path(store), touches)
    build_snapshot(Path(store), Path(snapshot))
    return {"events": 1, "seconds": time.perf_counter() - start}


def identical(ours: dict, theirs: dict) -> list[str]:
    """What differs between the two results (empty: identical)."""
    problems = [k for k in ("dfg", "starts", "ends", "variants") if ours[k] != theirs[k]]
    for kind in ("mean", "median"):
        if ours[kind].keys() != theirs[kind].keys():
            problems.append(f"{kind} keys")
            continue
        if any(not math.isclose(ours[kind][e], theirs[kind][e], rel_tol=1e-9, abs_tol=1e-6) for e in ours[kind]):
            problems.append(kind)
    return problems


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--touches", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs=3)
    args = parser.parse_args()
    if args.child:
        kind, first, second = args.child  # build: store, snapshot; the others: snapshot, output
        if kind == "build":
            emit(_build(first, second, args.touches), "events")
            return
        kinds = {"journey": _journey, "counted": _counted, "pm4py": _pm4py, "report": _report}
        emit(kinds[kind](first, second), "events")
        return
    work = work_dir().resolve()
    store_path = work / f"events-{args.touches}.sqlite"
    snapshot = work / f"maps-{args.touches}.duckdb"
    if not snapshot.exists():  # in a child, so this process stays small (children inherit its peak RSS)
        measure(__file__, "build", str(store_path), str(snapshot), "--touches", str(args.touches))
    kinds = {PEER: ("pm4py", "pm4py"), PROJECTED: ("journey", "journey"), COUNTED: ("counted", "counted"),
             REPORT: ("report", None)}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in kinds}
    for run in range(args.runs):
        for name, (kind, answer) in kinds.items():
            out = work / (f"maps-{answer}.json" if answer else "report.html")
            results[name].append(measure(__file__, kind, str(snapshot), str(out)))
        theirs = json.loads((work / "maps-pm4py.json").read_text())
        for answer in ("journey", "counted"):
            problems = identical(json.loads((work / f"maps-{answer}.json").read_text()), theirs)
            if problems:
                sys.exit(f"run {run + 1}: journey ({answer}) and PM4Py differ in {', '.join(problems)}")
    facts = json.loads((work / "maps-journey.json").read_text())
    events = results[PROJECTED][0]["events"]
    print(f"projection: {events:,} touches with a customer ({args.touches:,} demo touches), "
          f"{len(facts['variants']):,} variants, {len(facts['dfg']):,} edges; {args.runs} runs, medians; "
          "results identical in every run")
    report(results, PEER, "events/s")
    seconds = {k: statistics.median(r["seconds"] for r in v) for k, v in results.items()}
    load = statistics.median(r["load_seconds"] for r in results[PEER])
    print(f"PM4Py: {seconds[PEER]:.2f} s for the three calls (+{load:.1f} s to load and format its frame, untimed)")
    for name in (PROJECTED, COUNTED):
        speedup = seconds[PEER] / seconds[name]
        print(f"{name}: {seconds[name]:.3f} s, {speedup:.1f}x faster than PM4Py "
              f"(target >= 5x: {'met' if speedup >= 5 else 'MISSED'})")
    size = statistics.median(r["html_bytes"] for r in results[REPORT])
    print(f"report: {seconds[REPORT]:.2f} s, {size / 2**20:.2f} MiB of HTML")


if __name__ == "__main__":
    main()
