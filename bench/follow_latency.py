"""Follow-mode freshness: event-to-visible latency under a steady producer.

A projection of N demo touches (the store and projection of bench/late_touches.py's
``projected`` state, copied) is followed by ``journey.projections.operations.follow`` in
its own process while a producer appends touches to the same SQLite store at a steady
rate (batches every 0.1 s) for ``--seconds``. A reader watches the published snapshot
(its link and modification time every 10 ms; the position through
``journey.projections.freshness`` when it changed) and records when each batch became
visible. Latency = visible - committed, per batch; medians and p95 printed. Then (unless
``--no-check``) the store is projected again from empty into a file of its own and every
analyst table of the follower's last snapshot is compared with it (bench/late_touches.py's
check: a difference fails the benchmark).

Run:  python bench/follow_latency.py [--touches 1000000] [--rate 500] [--seconds 60] [--projected DIR] [--no-check]

``--projected DIR``: the projection to follow (default BENCH_DIR/late-N/projected). To measure
an earlier commit, run this script with that worktree's Python (its follower imports its code)
on a projection that code built (a file of another derive version would derive in full first).
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from _harness import work_dir

SECRET = b"benchmark-secret-0123456789"


def follower(store_path: str, working: str, snapshot: str) -> None:
    from journey.crypto.pseudonym import Pseudonymiser
    from journey.projections.operations import ProjectionPaths, follow
    from journey.store.event_store import EventStore
    from journey.store.sqlite import open_sqlite

    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    follow(EventStore(open_sqlite(store_path)), ProjectionPaths(Path(working), Path(snapshot)),
           Pseudonymiser(SECRET), interval=0.1)


def rebuild(store_path: str, directory: str) -> None:
    """The whole store projected from empty (catch-up, derive, publish) into ``directory``."""
    from journey.crypto.pseudonym import Pseudonymiser
    from journey.projections.operations import ProjectionPaths, catch_up
    from journey.store.event_store import EventStore
    from journey.store.sqlite import open_sqlite

    catch_up(EventStore(open_sqlite(store_path)),
             ProjectionPaths(Path(directory) / "working.duckdb", Path(directory) / "snapshot.duckdb"),
             Pseudonymiser(SECRET))


def produce(store_path: str, rate: int, seconds: float, committed: list[tuple[int, float]],
            patients: list[str], done: threading.Event) -> None:
    import orjson

    from journey.domain.touch import parse_touch
    from journey.store.event_store import EventStore, Submission
    from journey.store.sqlite import open_sqlite

    store = EventStore(open_sqlite(store_path))
    rnd = random.Random(3)
    per_batch = max(1, rate // 10)
    start, n = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        when = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        batch = [Submission.of(parse_touch(orjson.dumps({
            "event_id": f"live-{n + i}", "type": "message", "occurred_at": when, "channel": "sms",
            "customer": {"customer_id": rnd.choice(patients)},
            "properties": {"medium": "sms", "purpose": "reminder"}}))) for i in range(per_batch)]
        outcome = store.append(batch)
        committed.append((max(outcome.positions), time.time()))
        n += per_batch
        time.sleep(max(0.0, start + len(committed) * 0.1 - time.monotonic()))
    done.set()


def observe(snapshot: Path, committed: list[tuple[int, float]], visible: dict[int, float],
            done: threading.Event) -> None:
    """Poll cheaply (the link's target and the file's modification time, every 10 ms) and
    read the published position only when the snapshot changed: the observer must not
    take the CPU the follower needs."""
    import os

    from journey.errors import ProjectionError
    from journey.projections.freshness import published_position

    seen, last, position = 0, None, 0
    while not (done.is_set() and seen >= len(committed)):
        try:
            mark = (os.readlink(snapshot), os.stat(snapshot).st_mtime_ns)
        except OSError:
            mark = None
        if mark is not None and mark != last:
            try:
                position = published_position(snapshot) or 0
                last = mark
            except ProjectionError:
                pass
        now = time.time()
        while seen < len(committed) and committed[seen][0] <= position:
            visible[committed[seen][0]] = now
            seen += 1
        if done.is_set() and committed and time.time() - committed[-1][1] > 120:
            break
        time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--touches", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--follower", nargs=3)
    parser.add_argument("--rebuild", nargs=2)
    parser.add_argument("--no-check", action="store_true", help="skip comparing the snapshot with a rebuild")
    parser.add_argument("--projected", help="the projected directory to copy (working file and snapshot slots)")
    args = parser.parse_args()
    if args.follower:
        follower(*args.follower)
        return
    if args.rebuild:
        rebuild(*args.rebuild)
        return
    work = work_dir()  # BENCH_DIR, as bench/late_touches.py
    projected = Path(args.projected) if args.projected else work / f"late-{args.touches}" / "projected"
    if not projected.exists():
        raise SystemExit(f"run `python bench/late_touches.py --touches {args.touches}` first (it builds {projected})")
    run = work / f"follow-{args.touches}"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(projected, run, symlinks=True)
    store_path = run / "events.sqlite"
    shutil.copy(work / f"events-{args.touches}.sqlite", store_path)
    import sqlite3

    con = sqlite3.connect(store_path)
    patients = [r[0] for r in con.execute(
        "SELECT DISTINCT json_extract(state, '$.touch.customer.customer_id') FROM stored_events "
        "WHERE json_extract(state, '$.touch.customer.customer_id') IS NOT NULL LIMIT 50000")]
    con.close()
    log = open(run / "follower.log", "w")
    proc = subprocess.Popen([sys.executable, __file__, "--follower", str(store_path), str(run / "working.duckdb"),
                             str(run / "snapshot.duckdb")], stderr=log)
    time.sleep(3)  # the follower opens the projection and finds nothing new
    committed: list[tuple[int, float]] = []
    visible: dict[int, float] = {}
    done = threading.Event()
    observer = threading.Thread(target=observe, args=(run / "snapshot.duckdb", committed, visible, done))
    observer.start()
    produce(str(store_path), args.rate, args.seconds, committed, patients, done)
    observer.join()
    proc.terminate()
    proc.wait(timeout=60)
    latencies = sorted(visible[p] - t for p, t in committed if p in visible)
    produced = len(committed) * max(1, args.rate // 10)
    cycles = sum(1 for line in open(run / "follower.log") if " read " in line)
    print(f"{args.touches:,} stored touches; producer {produced:,} touches in {args.seconds:.0f} s "
          f"({produced / args.seconds:,.0f}/s, batches of {max(1, args.rate // 10)} every 0.1 s); "
          f"{cycles} follower cycles that loaded something")
    print(f"event-to-visible latency over {len(latencies)} batches: median {statistics.median(latencies):.2f} s, "
          f"p95 {latencies[int(0.95 * (len(latencies) - 1))]:.2f} s, max {latencies[-1]:.2f} s "
          f"({len(committed) - len(latencies)} batches never seen)")
    if not args.no_check:
        from late_touches import check

        rebuilt = run / "rebuilt"
        shutil.rmtree(rebuilt, ignore_errors=True)
        subprocess.run([sys.executable, __file__, "--rebuild", str(store_path), str(rebuilt)], check=True)
        result = check(str(run / "snapshot.duckdb"), str(rebuilt / "snapshot.duckdb"))
        print(f"check: every analyst table ({result['tables']} tables, {result['events']:,} rows) of the "
              "follower's last snapshot equals a rebuild's from empty")


if __name__ == "__main__":
    main()
