"""A follower's cycle, with the publish after the derive or behind the next one.

On copies of a projection of N demo touches (bench/late_touches.py's ``projected`` state,
both snapshot slots published), each round runs follower-like cycles in one process, with
no producer or reader beside it: ``--batch`` message touches to random patients appended,
caught up, derived, then published either at once (``after``: the cycle of the code before
``publish_behind``) or behind the next cycle (``behind``: ``PublishBehind``, what
``journey project --follow`` does). The modes alternate, each in its own process; the
seconds of each cycle and of all the cycles (the last publish awaited) are printed, with
medians over the rounds. The snapshot of each run is then compared with the working file
(every analyst table).

Run:  python bench/follow_cycles.py [--touches 1000000] [--batch 600] [--cycles 14] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _harness import work_dir

SECRET = b"benchmark-secret-0123456789"
MODES = ("behind", "after")


def run(mode: str, projected: str, store_copy: str, directory: str, batch: int, cycles: int) -> dict[str, object]:
    import sqlite3

    import orjson

    from journey.crypto.pseudonym import Pseudonymiser
    from journey.domain.touch import parse_touch
    from journey.projections.projector import Projector
    from journey.projections.publish import SLOT_WAL_BACKGROUND, publish
    from journey.projections.publish_behind import PublishBehind
    from journey.projections.schema import ANALYST_TABLES
    from journey.projections.slot_checkpoints import SlotCheckpoints
    from journey.store.event_store import EventStore, Submission
    from journey.store.sqlite import open_sqlite

    work = Path(directory)
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(projected, work, symlinks=True)
    shutil.copy(store_copy, work / "events.sqlite")
    con = sqlite3.connect(work / "events.sqlite")
    patients = [r[0] for r in con.execute(
        "SELECT DISTINCT json_extract(state, '$.touch.customer.customer_id') FROM stored_events "
        "WHERE json_extract(state, '$.touch.customer.customer_id') IS NOT NULL LIMIT 50000")]
    con.close()
    rnd = random.Random(3)
    when = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    batches = [[Submission.of(parse_touch(orjson.dumps({
        "event_id": f"live-{c}-{i}", "type": "message", "occurred_at": when, "channel": "sms",
        "customer": {"customer_id": rnd.choice(patients)}, "properties": {"medium": "sms", "purpose": "reminder"}})))
        for i in range(batch)] for c in range(cycles)]
    os.sync()
    store = EventStore(open_sqlite(str(work / "events.sqlite")))
    snapshot = work / "snapshot.duckdb"
    projector = Projector(store, work / "working.duckdb", Pseudonymiser(SECRET))
    checkpoints = SlotCheckpoints(SLOT_WAL_BACKGROUND)
    behind: PublishBehind[None] = PublishBehind(projector.con, snapshot, checkpoints)
    seconds = []
    started = time.perf_counter()
    for touches in batches:
        cycle = time.perf_counter()
        store.append(touches)
        projector.catch_up()
        projector.derive()
        if mode == "after":
            publish(projector.con, snapshot, checkpoints)
        else:
            behind.finish()
            behind.start(None)
        seconds.append(time.perf_counter() - cycle)
    behind.finish()
    checkpoints.wait()
    total = time.perf_counter() - started
    projector.con.execute(f"ATTACH '{snapshot}' AS s (READ_ONLY)")
    for table in (t for t in ANALYST_TABLES if t != "projection_status"):
        extra, missing = projector.con.execute(
            f"SELECT (SELECT count(*) FROM (SELECT * FROM s.{table} EXCEPT ALL SELECT * FROM main.{table})), "
            f"(SELECT count(*) FROM (SELECT * FROM main.{table} EXCEPT ALL SELECT * FROM s.{table}))").fetchone()
        if extra or missing:
            raise SystemExit(f"{mode}: the snapshot's {table} differs from the working file's")
    projector.con.execute("DETACH s")
    projector.close()
    return {"mode": mode, "total": total, "cycles": seconds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--touches", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=600)
    parser.add_argument("--cycles", type=int, default=14)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", nargs=6)
    args = parser.parse_args()
    if args.child:
        mode, projected, store_copy, directory, batch, cycles = args.child
        print(json.dumps(run(mode, projected, store_copy, directory, int(batch), int(cycles))))
        return
    work = work_dir()
    projected = work / f"late-{args.touches}" / "projected"
    if not projected.exists():
        raise SystemExit(f"run `python bench/late_touches.py --touches {args.touches}` first (it builds {projected})")
    results: dict[str, list[dict[str, object]]] = {mode: [] for mode in MODES}
    for _ in range(args.rounds):
        for mode in MODES:
            out = subprocess.run([sys.executable, __file__, "--child", mode, str(projected),
                                  str(work / f"events-{args.touches}.sqlite"), str(work / f"cycles-{mode}"),
                                  str(args.batch), str(args.cycles)], capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            results[mode].append(result)
            cycles = " ".join(f"{s:.2f}" for s in result["cycles"])  # type: ignore[union-attr]
            print(f"{mode:6} {result['total']:6.2f} s for {args.cycles} cycles of {args.batch} touches: {cycles}",
                  flush=True)
    print(f"{args.touches:,} stored touches; {args.rounds} rounds, modes alternated; snapshot = working file "
          "after every run")
    for mode in MODES:
        totals = [r["total"] for r in results[mode]]
        every = [s for r in results[mode] for s in r["cycles"]]  # type: ignore[union-attr]
        print(f"{mode:6} median total {statistics.median(totals):.2f} s {totals}; median cycle "
              f"{statistics.median(every):.2f} s")


if __name__ == "__main__":
    main()
