"""Projection benchmark: catch-up from an event store of N touches into an empty
DuckDB file, beside the floor measured in the same run: reading the same
notifications, with the projector's own read path and batch size, and doing
nothing with them.

Each measurement runs in its own process (peak memory is its own). Medians of
--runs runs, interleaved. The store is built once (demo touches, journey ingest)
and kept in bench/out/ for later runs.

Run:  python bench/projection.py [--touches 1000000] [--runs 3] [--before DIR]

``--before DIR`` measures a worktree of an earlier commit beside (``git worktree add DIR
REV``), in the same rounds: a change's cost against the code before it.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

from _harness import emit, interleave, measure, prefer_code, report, work_dir

BATCH = 245_760  # the projector's default (JOURNEY_PROJECTION_BATCH)


def build_store(path: Path, touches: int) -> None:
    if path.exists():
        return
    from journey.demo import generate_clinic
    from journey.ingest.pipeline import Ingestor
    from journey.ingest.sources import RawRecord
    from journey.store.event_store import EventStore
    from journey.store.sqlite import open_sqlite

    import orjson

    records = (RawRecord("bench", str(n), orjson.dumps(t))
               for n, t in enumerate(itertools.islice(generate_clinic(seed=11, patients=touches // 7), touches)))
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    summary = Ingestor(EventStore(open_sqlite(str(partial))), workers=2).ingest(records)
    print(f"built {partial.name}: {summary.accepted:,} touches in {summary.seconds:.0f} s", file=sys.stderr)
    partial.rename(path)


def floor(store_path: str, _target: str) -> dict[str, float]:
    from journey.store.sqlite import open_sqlite

    recorder = open_sqlite(store_path)
    start = time.perf_counter()
    position, count = 0, 0
    while rows := recorder.select_rows(position + 1, BATCH):  # the projector's own read path
        count += len(rows)
        position = rows[-1][0]
    return {"events": count, "seconds": time.perf_counter() - start}


def project(store_path: str, target: str) -> dict[str, float]:
    from journey.projections.projector import Projector
    from journey.crypto.pseudonym import Pseudonymiser
    from journey.store.event_store import EventStore
    from journey.store.sqlite import open_sqlite

    projector = Projector(EventStore(open_sqlite(store_path)), Path(target),
                          Pseudonymiser(b"benchmark-secret-0123456789"), batch_size=BATCH)
    start = time.perf_counter()
    result = projector.catch_up()
    loaded = time.perf_counter() - start
    projector.derive()
    total = time.perf_counter() - start
    projector.close()
    return {"events": result.read, "seconds": loaded, "derive_seconds": total - loaded, "total_seconds": total}


def child(kind: str, store_path: str, target: str) -> None:
    if kind.startswith("project@"):
        prefer_code(kind.split("@", 1)[1])
    emit((floor if kind == "floor" else project)(store_path, target), "events")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--touches", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs=3)
    parser.add_argument("--before", help="a worktree of an earlier commit, measured beside")
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    work = work_dir()
    store_path = work / f"events-{args.touches}.sqlite"
    build_store(store_path, args.touches)
    print(f"event store: {args.touches:,} demo touches, {store_path.stat().st_size / 2**20:,.0f} MiB SQLite; "
          f"batches of {BATCH:,}; {args.runs} runs, medians")
    kinds = {
        "floor (read only)": lambda tmp: measure(__file__, "floor", str(store_path), f"{tmp}/p.duckdb"),
        "journey catch-up": lambda tmp: measure(__file__, "project", str(store_path), f"{tmp}/p.duckdb"),
    }
    if args.before:
        kinds["journey catch-up, before"] = lambda tmp: measure(
            __file__, f"project@{args.before}", str(store_path), f"{tmp}/p.duckdb")
    results = interleave(args.runs, kinds, work)
    report(results, "floor (read only)", "events/s")
    for name in [k for k in kinds if k.startswith("journey")]:
        ours = results[name]
        total = statistics.median(r["total_seconds"] for r in ours)
        print(f"{name}: derive (analyst tables, once after catch-up) median "
              f"{statistics.median(r['derive_seconds'] for r in ours):.1f} s; catch-up + derive: median "
              f"{total:.1f} s, {args.touches / total:,.0f} events/s overall")

if __name__ == "__main__":
    main()
