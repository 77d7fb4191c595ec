"""Where an encrypted ingest's CPU goes, per touch, beside the floor's.

One process, no workers: each stage of the pipeline timed alone (CPU time, best of
--runs passes over the same batches, garbage collection as rare as the ingest sets it)
on the demo clinic's first N touches:

- floor: what ``bench/ingest.py``'s floor does (parse each line for its event_id, one
  batched INSERT, commit);
- validate: ``journey.ingest.pipeline.check`` (pydantic: parse, validate, canonical JSON);
- seal, new keys: ``Sealer.seal_all`` on a fresh key store (a key made for each new
  identifier, as a new clinic's first ingest does);
- seal, known keys: the same touches again (every key cached);
- write: ``EventStore.append`` of the sealed batches (classify, map, insert, commit).

The ingest runs validation and sealing in worker processes and writing in the main
one, on every core; so a rate of ``share`` x the floor's needs the stages' sum to stay
under ``cores / share`` x the floor's CPU a touch. The table prints that budget.

Run:  python bench/ingest_budget.py [--touches 100000] [--runs 3] [--cores 2] [--share 0.5]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from _harness import work_dir

BATCH = 5000


def cpu_per_touch(step: Callable[[], object], touches: int, runs: int) -> float:
    """Microseconds of CPU per touch: the best of ``runs`` passes."""
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        step()
        best = min(best, time.process_time() - start)
    return best / touches * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--touches", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--share", type=float, default=0.5, help="target rate as a share of the floor's")
    args = parser.parse_args()

    from journey.bootstrap import open_ingestor, open_recorder
    from journey.config import Settings
    from journey.demo import generate_clinic
    from journey.ingest import pipeline
    from journey.ingest.sources import read_jsonl
    from journey.store.batch import Packed
    from journey.store.event_store import EventStore

    gc.set_threshold(200_000, 50, 1000)  # as the ingest sets it
    source = work_dir() / f"demo-{args.touches}.jsonl"
    if not source.exists():
        from journey.demo import write_jsonl

        write_jsonl(source, itertools.islice(generate_clinic(seed=11, patients=args.touches // 5), args.touches))
    records = list(read_jsonl(str(source)))
    raws = [r.raw for r in records]
    batches = [raws[i:i + BATCH] for i in range(0, len(raws), BATCH)]
    n = len(raws)
    work = Path(tempfile.mkdtemp(dir=work_dir()))

    def floor() -> None:
        path = work / f"floor-{time.monotonic_ns()}.sqlite"
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE touches (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, body BLOB)")
        for batch in batches:
            rows = [(orjson.loads(line)["event_id"], line) for line in batch]
            db.execute("BEGIN")
            db.executemany("INSERT OR IGNORE INTO touches (event_id, body) VALUES (?, ?)", rows)
            db.execute("COMMIT")
        db.close()

    identifiers: list[list] = [[] for _ in batches]
    checked = [pipeline.check(b, None, 1 << 20, identifiers=ids) for b, ids in zip(batches, identifiers)]
    stages = {"floor": cpu_per_touch(floor, n, args.runs),
              "validate": cpu_per_touch(lambda: [pipeline.check(b, None, 1 << 20) for b in batches], n, args.runs)}

    def sealer_in(home: Path):  # a fresh key store each time: every identifier new
        settings = Settings.from_env({"JOURNEY_EVENT_STORE": f"sqlite:///{home}/e.sqlite", "JOURNEY_HOME": str(home)})
        return open_ingestor(settings).sealing.open()

    fresh = []
    for run in range(args.runs):
        home = work / f"keys-{run}"
        home.mkdir()
        sealer = sealer_in(home)
        start = time.process_time()
        sealed = [sealer.seal_all(c.content.items(), ids) for c, ids in zip(checked, identifiers)]
        fresh.append(time.process_time() - start)
    stages["seal, new keys"] = min(fresh) / n * 1e6
    stages["seal, known keys"] = cpu_per_touch(
        lambda: [sealer.seal_all(c.content.items(), ids) for c, ids in zip(checked, identifiers)], n, args.runs)
    ready = [c._replace(sealed=Packed.of(ss)) for c, ss in zip(checked, sealed)]
    by_batch = [records[i:i + BATCH] for i in range(0, n, BATCH)]

    def write() -> None:
        home = work / f"write-{time.monotonic_ns()}"
        home.mkdir()
        settings = Settings.from_env({"JOURNEY_EVENT_STORE": f"sqlite:///{home}/e.sqlite", "JOURNEY_HOME": str(home)})
        store = EventStore(open_recorder(settings))
        for batch, result in zip(by_batch, ready):
            store.append(*pipeline._assemble(batch, result))

    stages["write"] = cpu_per_touch(write, n, args.runs)

    budget = stages["floor"] * args.cores / args.share
    print(f"{n:,} demo touches, CPU microseconds a touch, best of {args.runs}")
    for name, value in stages.items():
        print(f"  {name:18} {value:7.1f}  ({value / stages['floor']:.1f}x the floor)")
    for label, keys in (("new keys", "seal, new keys"), ("known keys", "seal, known keys")):
        total = stages["validate"] + stages[keys] + stages["write"]
        print(f"  encrypted ingest, {label}: {total:.1f} a touch; a rate of {args.share:.0%} of the floor on "
              f"{args.cores} cores allows {budget:.1f} ({total / budget:.1f}x over)" if total > budget else
              f"  encrypted ingest, {label}: {total:.1f} a touch, within the {budget:.1f} budget")
    import shutil

    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
