"""Live projection benchmark: how long 1,000 late touches take to become visible on a
projection of N touches, against the full projection from empty, in the same run.

One round, in its own processes:
- **full**: catch-up + derive + publish of the N-touch store into an empty DuckDB file;
- **late**: on a projection of those N touches (built once, copied per round), append
  1,000 touches (998 to existing patients, one dated months back, one identity link that
  merges a web visitor's anonymous journey into a patient's), then catch-up + derive +
  publish; the same for the rebuild peer, which derives everything again
  (``derive(force=True)``);
- **check**: every analyst table of the snapshot published incrementally equals a
  rebuild's from empty.

Run:  python bench/late_touches.py [--touches 1000000] [--runs 3] [--before DIR]

``--before DIR`` measures a worktree of an earlier commit beside, in every round: its own
projection of the same store (built once with its code), its full projection and its
incremental late touches (the rebuild peer and the check for the current code only).
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from _harness import arguments, emit, measure, prefer_code, work_dir

SECRET = b"benchmark-secret-0123456789"
LATE = 1_000


def _store(path: str):  # noqa: ANN202 - the journey types load in the child only
    from journey.store.event_store import EventStore
    from journey.store.sqlite import open_sqlite

    return EventStore(open_sqlite(path))


def _projector(store_path: str, target: str):  # noqa: ANN202
    from journey.crypto.pseudonym import Pseudonymiser
    from journey.projections.projector import Projector

    return Projector(_store(store_path), Path(target), Pseudonymiser(SECRET))


def late_touches(store_path: str) -> list[bytes]:
    """1,000 touches for patients already in the store (from its own rows)."""
    import orjson
    import sqlite3

    con = sqlite3.connect(store_path)
    patients = [r[0] for r in con.execute(
        "SELECT DISTINCT json_extract(state, '$.touch.customer.customer_id') FROM stored_events "
        "WHERE json_extract(state, '$.touch.customer.customer_id') IS NOT NULL LIMIT 50000")]
    visitor = con.execute(
        "SELECT json_extract(state, '$.touch.customer.anonymous_id') FROM stored_events "
        "WHERE json_extract(state, '$.touch.customer.anonymous_id') IS NOT NULL "
        "AND json_extract(state, '$.touch.customer.customer_id') IS NULL LIMIT 1").fetchone()
    latest = con.execute("SELECT max(json_extract(state, '$.touch.occurred_at')) FROM stored_events").fetchone()[0]
    con.close()
    rnd = random.Random(7)
    records = []
    for n in range(LATE - 2):
        records.append({"event_id": f"late-{n}", "type": "message", "occurred_at": latest, "channel": "sms",
                        "customer": {"customer_id": rnd.choice(patients)},
                        "properties": {"medium": "sms", "purpose": "recall"}})
    records.append({"event_id": "late-months-back", "type": "call", "occurred_at": "2025-01-15T10:00:00+03:00",
                    "channel": "phone", "customer": {"customer_id": rnd.choice(patients)},
                    "properties": {"direction": "inbound", "answered": True, "administrator": "Irina"}})
    merged = {"customer_id": rnd.choice(patients)}
    if visitor:
        merged["anonymous_id"] = visitor[0]
    records.append({"event_id": "late-merge", "type": "identity_link", "occurred_at": latest, "customer": merged})
    return [orjson.dumps(r) for r in records]


def append_late(store_path: str) -> None:
    from journey.ingest.pipeline import Ingestor
    from journey.ingest.sources import RawRecord

    lines = late_touches(store_path)
    summary = Ingestor(_store(store_path), workers=1).ingest(
        RawRecord("late", str(n), line) for n, line in enumerate(lines))
    assert summary.accepted == LATE, summary


def visible(store_path: str, target: str, *, force: bool = False, publishes: int = 1) -> dict[str, float]:
    """Catch-up + derive + publish: what makes the store's news visible to analysts.
    ``publishes`` 2 publishes once more after (a follower's steady state: both snapshot
    slots hold this projection), untimed."""
    from journey.projections.publish import publish

    projector = _projector(store_path, target)
    start = time.perf_counter()
    read = projector.catch_up().read
    loaded = time.perf_counter()
    logged = _log_mib(Path(target))
    projector.derive(force=force)
    derived = time.perf_counter()
    derive_log = _log_mib(Path(target)) - logged
    incremental = projector.last_derive is not None and projector.last_derive.since is not None
    published = publish(projector.con, Path(target).with_name("snapshot.duckdb"))
    done = time.perf_counter()
    slot_log = _log_mib(published.slot)
    for _ in range(publishes - 1):
        publish(projector.con, Path(target).with_name("snapshot.duckdb"))
    projector.close()
    return {"events": read, "seconds": done - start, "load_seconds": loaded - start,
            "derive_seconds": derived - loaded, "publish_seconds": done - derived, "incremental": float(incremental),
            "derive_log_mib": derive_log, "slot_log_mib": slot_log}


def _log_mib(database: Path) -> float:
    """The size of a DuckDB file's write-ahead log (MiB; 0 without one): what a derive's
    commit wrote into the working file's, what a publish left in the slot's."""
    wal = database.with_name(database.name + ".wal")
    return wal.stat().st_size / 2**20 if wal.exists() else 0.0


def check(incremental: str, rebuilt: str) -> dict[str, float]:
    """Every analyst table of the incremental snapshot against a rebuild's, in DuckDB (rows
    as multisets, floats to 9 significant digits, as tests/projections/helpers.every_table
    compares them): a difference fails the benchmark."""
    import duckdb

    from journey.projections.schema import ANALYST_TABLES

    con = duckdb.connect()
    con.execute(f"ATTACH '{incremental}' AS a (READ_ONLY); ATTACH '{rebuilt}' AS b (READ_ONLY)")
    differing, rows = [], 0
    for table in (t for t in ANALYST_TABLES if t != "projection_status"):
        columns = con.execute(f"DESCRIBE a.{table}").fetchall()
        select = ", ".join(f"printf('%.9g', {name})" if kind == "DOUBLE" else name for name, kind, *_ in columns)
        extra, missing, count = con.execute(
            f"SELECT (SELECT count(*) FROM (SELECT {select} FROM a.{table} EXCEPT ALL SELECT {select} FROM b.{table})), "
            f"(SELECT count(*) FROM (SELECT {select} FROM b.{table} EXCEPT ALL SELECT {select} FROM a.{table})), "
            f"(SELECT count(*) FROM a.{table})").fetchone()
        rows += count
        if extra or missing:
            differing.append(f"{table} ({extra} rows only incremental, {missing} only rebuilt)")
    if differing:
        raise SystemExit(f"incremental differs from the rebuild in {differing}")
    return {"events": rows, "seconds": 1.0, "tables": len(ANALYST_TABLES) - 1}


def _remove(paths: Iterable[Path]) -> None:
    """Remove files and directories (a DuckDB file's spill directory ``NAME.tmp`` among them)."""
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def child(kind: str, store_path: str, target: str) -> None:
    if "@" in kind:  # kind@DIR: the code of the worktree DIR (--before)
        kind, code = kind.split("@", 1)
        prefer_code(code)
    if kind == "full":
        emit(visible(store_path, target), "events")
    elif kind == "projected":
        emit(visible(store_path, target, publishes=2), "events")
    elif kind in ("late", "late-rebuild"):
        emit(visible(store_path, target, force=kind == "late-rebuild"), "events")
    elif kind == "append":
        append_late(store_path)
        emit({"events": LATE, "seconds": 1.0}, "events")
    elif kind == "check":
        emit(check(store_path, target), "events")


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    before = None
    if "--before" in sys.argv:  # a worktree of an earlier commit, measured beside
        at = sys.argv.index("--before")
        before = str(Path(sys.argv[at + 1]).resolve())
        del sys.argv[at:at + 2]
    args = arguments(1_000_000, child)
    if args is None:
        return
    from projection import build_store

    work = work_dir()
    store = work / f"events-{args.touches}.sqlite"
    build_store(store, args.touches)
    base = work / f"late-{args.touches}"
    base.mkdir(exist_ok=True)
    projected = base / "projected"  # the working file and both snapshot slots, as a follower leaves them
    codes = {"": projected}
    if before:
        codes[f"@{before}"] = base / "projected-before"
    for code, directory in codes.items():  # built each run: a file of another derive version would derive in full
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir()
        measure(__file__, "projected" + code, str(store), str(directory / "working.duckdb"))
    print(f"{args.touches:,} demo touches (SQLite store); {LATE:,} late touches per round; {args.runs} runs, medians"
          + (f"; before: {before}" if before else ""))
    peers = {"full": ("full", ""), "late": ("late", ""), "again": ("late-rebuild", "")}
    if before:
        peers |= {"full, before": ("full", f"@{before}"), "late, before": ("late", f"@{before}")}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in peers}
    for round_ in range(args.runs):
        for name, (kind, code) in peers.items():
            if kind == "full":
                os.sync()
                results[name].append(measure(__file__, kind + code, str(store), str(base / f"full-{round_}.duckdb")))
                for path in base.glob("full-*"):
                    path.unlink()
                continue
            copy = "reb" if kind == "late-rebuild" else "inc" + ("-before" if code else "")
            shutil.copy(store, base / f"{copy}.sqlite")
            shutil.rmtree(base / copy, ignore_errors=True)
            shutil.copytree(codes[code], base / copy, symlinks=True)
            measure(__file__, "append", str(base / f"{copy}.sqlite"), "-")
            os.sync()  # the copies' dirty pages would otherwise be flushed by the measured checkpoints' fsync
            results[name].append(measure(__file__, kind + code, str(base / f"{copy}.sqlite"),
                                         str(base / copy / "working.duckdb")))
            if kind == "late" and not results[name][-1]["incremental"]:
                raise SystemExit(f"{name}: the late touches were derived in full, not incrementally")
        if round_ == 0:
            _remove(base.glob("fresh.duckdb*"))  # a run killed before its cleanup left one: a rebuild starts empty
            measure(__file__, "full", str(base / "inc.sqlite"), str(base / "fresh.duckdb"))
            checked = measure(__file__, "check", str(base / "inc" / "snapshot.duckdb"), str(base / "fresh.duckdb"))
            print(f"check: every analyst table ({checked['tables']:.0f} tables, {checked['events']:,.0f} rows) "
                  "of the snapshot published incrementally equals a rebuild's from empty")
        for path in base.glob(".snapshot.duckdb*"):
            path.unlink()
    labels = {"full": "full projection from empty", "late": "1,000 late touches, incremental",
              "again": "1,000 late touches, full re-derive", "full, before": "before: full projection from empty",
              "late, before": "before: 1,000 late touches, incr."}
    for name, runs in results.items():
        parts = " + ".join(f"{p} {statistics.median(r[p + '_seconds'] for r in runs):.2f}"
                           for p in ("load", "derive", "publish"))
        logs = (f"; logs: derive {statistics.median(r['derive_log_mib'] for r in runs):.1f} MiB, slot "
                f"{statistics.median(r['slot_log_mib'] for r in runs):.1f} MiB" if "derive_log_mib" in runs[0] else "")
        print(f"{labels[name]:36} median {statistics.median(r['seconds'] for r in runs):7.2f} s  ({parts}{logs}) "
              f"peak {max(r['peak_mib'] for r in runs):,.0f} MiB  [{', '.join(format(r['seconds'], '.2f') for r in runs)}]")
    for suffix in ("", ", before") if before else ("",):
        ratio = (statistics.median(r["seconds"] for r in results["late" + suffix])
                 / statistics.median(r["seconds"] for r in results["full" + suffix]))
        print(f"late / full{suffix}: {ratio:.1%} (target at most 5%)")
    for name in ("inc", "reb", "inc-before"):  # the copies (two stores and two projections: ~30 GB at 10M touches)
        shutil.rmtree(base / name, ignore_errors=True)
        for path in base.glob(f"{name}.sqlite*"):
            path.unlink()
    _remove(base.glob("fresh.duckdb*"))
    shutil.rmtree(base / "projected-before", ignore_errors=True)


if __name__ == "__main__":
    main()
