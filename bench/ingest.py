"""Ingest benchmark: 1,000,000 demo touches from JSON Lines into the event store.

Beside it, in the same run, the physical floor: a plain batched SQLite insert of
the same records (parse each line for its event_id, INSERT with a unique index on
event_id, same batch size, same WAL mode). Each measurement runs in its own
process; peak memory is the largest resident set of that process and its
validation workers together, sampled every 50 ms. Medians of --runs runs.

``journey-sqlite`` is the application as wired (personal fields sealed with
per-customer keys, in the validation workers, each with its own key-store connection); ``journey-sqlite-unencrypted`` the same store without a key
store, to price the encryption.

Run:  python bench/ingest.py [--touches 1000000] [--runs 3] [--postgres URL] [--before DIR]

``--before DIR`` measures the ingest of a worktree of an earlier commit beside, encrypted and
not (``git worktree add DIR <commit>``).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sqlite3
import threading
import time
from pathlib import Path

import orjson
from _harness import emit, interleave, measure, prefer_code, report, work_dir

BATCH = 5000


def make_input(path: Path, touches: int) -> None:
    from journey.demo import generate_clinic, write_jsonl

    if path.exists() and sum(1 for _ in path.open("rb")) == touches:
        return
    write_jsonl(path, itertools.islice(generate_clinic(seed=11, patients=touches // 5), touches))


def floor(source: str, target: str) -> dict[str, float]:
    db = sqlite3.connect(target, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE touches (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, body BLOB)")
    start = time.perf_counter()
    count = 0
    with open(source, "rb") as file:
        while lines := list(itertools.islice(file, BATCH)):
            rows = [(orjson.loads(line)["event_id"], line.rstrip(b"\n")) for line in lines]
            db.execute("BEGIN")
            db.executemany("INSERT OR IGNORE INTO touches (event_id, body) VALUES (?, ?)", rows)
            db.execute("COMMIT")
            count += len(rows)
    return {"records": count, "seconds": time.perf_counter() - start}


def journey_ingest(source: str, target: str, sealed: bool = True) -> dict[str, float]:
    """The application's wiring: personal fields sealed with per-customer keys (the
    key store beside the events), or with ``sealed=False`` stored in the clear."""
    from journey.bootstrap import open_ingestor, open_recorder
    from journey.config import Settings
    from journey.ingest.sources import read_jsonl
    from journey.store.event_store import EventStore

    url = target if target.startswith("postgresql://") else f"sqlite:///{target}"
    home = Path(target).parent if not target.startswith("postgresql://") else work_dir() / "pg-home"
    settings = Settings.from_env({"JOURNEY_EVENT_STORE": url, "JOURNEY_HOME": str(home)})  # workers: all CPUs
    ingestor = open_ingestor(settings, None if sealed else EventStore(open_recorder(settings)))
    summary = ingestor.ingest(read_jsonl(source))
    assert summary.accepted == summary.read, summary
    return {"records": summary.read, "seconds": summary.seconds}


def _tree_rss_kib(root: int) -> int:
    """Resident memory of ``root`` and all its descendants (validation workers)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except OSError:
            continue
        parents[int(entry)] = int(fields["PPid"])
        rss[int(entry)] = int(fields.get("VmRSS", "0 kB").split()[0])
    total = 0
    for pid in rss:
        walk = pid
        while walk and walk != root:
            walk = parents.get(walk, 0)
        if walk == root:
            total += rss[pid]
    return total


class _PeakSampler(threading.Thread):
    """Samples the whole process tree's RSS every 50 ms; ``peak`` is the maximum."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            self.peak = max(self.peak, _tree_rss_kib(os.getpid()))


def child(kind: str, source: str, target: str) -> None:
    if "@" in kind:  # journey@DIR, plain@DIR: the code of an earlier commit's worktree
        kind, code = kind.split("@", 1)
        prefer_code(code)
    sampler = _PeakSampler()
    sampler.start()
    if kind == "floor":
        result = floor(source, target)
    else:
        result = journey_ingest(source, target, sealed=kind != "plain")
    sampler.stop.set()
    emit(result, "records", sampler.peak)


def reset_postgres(url: str) -> None:
    import psycopg

    base, _, query = url.partition("?schema=")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {query} CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS journey_keys CASCADE")  # the key store beside it
        conn.execute(f"CREATE SCHEMA {query}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--touches", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test?schema=bench_ingest")
    parser.add_argument("--child", nargs=3)
    parser.add_argument("--before", help="a worktree of an earlier commit, measured beside (encrypted and not)")
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    work = work_dir()
    source = work / f"demo-{args.touches}.jsonl"
    make_input(source, args.touches)
    print(f"input: {args.touches:,} demo touches, {source.stat().st_size / 2**20:,.0f} MiB JSON Lines; "
          f"batches of {BATCH}; {args.runs} runs, medians")
    kinds = {
        "floor": lambda tmp: measure(__file__, "floor", str(source), f"{tmp}/e.sqlite"),
        "journey-sqlite": lambda tmp: measure(__file__, "journey", str(source), f"{tmp}/e.sqlite"),
        "journey-sqlite-unencrypted": lambda tmp: measure(__file__, "plain", str(source), f"{tmp}/e.sqlite"),
    }
    if args.before:
        kinds["journey-sqlite, before"] = lambda tmp: measure(
            __file__, f"journey@{args.before}", str(source), f"{tmp}/e.sqlite")
        kinds["journey-sqlite-unencrypted, before"] = lambda tmp: measure(
            __file__, f"plain@{args.before}", str(source), f"{tmp}/e.sqlite")
    if args.postgres:
        def postgres(_tmp: str) -> dict[str, float]:
            reset_postgres(args.postgres)
            try:
                return measure(__file__, "journey", str(source), args.postgres)
            finally:
                reset_postgres(args.postgres)

        kinds["journey-postgresql"] = postgres  # in every round, beside SQLite
    results = interleave(args.runs, kinds, work)
    rates = report(results, "floor", "touches/s")
    if args.postgres:
        print(f"PostgreSQL / SQLite (encrypted): {rates['journey-postgresql'] / rates['journey-sqlite']:.0%}")

if __name__ == "__main__":
    main()
