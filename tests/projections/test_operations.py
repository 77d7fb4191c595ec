"""Catch-up, follow, rebuild and as-of on a real SQLite store and real DuckDB files."""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path

import duckdb
import pytest

from journey.errors import ProjectionError
from journey.projections import operations
from journey.projections.operations import ProjectionPaths
from journey.projections.publish import projector_lock, query
from journey.store.event_store import EventStore
from journey.store.sqlite import open_sqlite
from tests.projections.helpers import PSEUDONYMS, append
from tests.touches import touch


@pytest.fixture
def sqlite_store(tmp_path: Path) -> EventStore:
    return EventStore(open_sqlite(str(tmp_path / "events.sqlite")))


@pytest.fixture
def paths(tmp_path: Path) -> ProjectionPaths:
    return ProjectionPaths(tmp_path / "projection.duckdb", tmp_path / "analytics.duckdb", batch_size=3)


def calls(n: int, start: int = 0) -> list[dict]:
    return [touch("call", f"c-{i}", customer={"customer_id": f"P-{i % 4}"}) for i in range(start, start + n)]


def test_catch_up_publishes_a_read_only_snapshot(sqlite_store: EventStore, paths: ProjectionPaths) -> None:
    append(sqlite_store, *calls(10))
    result = operations.catch_up(sqlite_store, paths, PSEUDONYMS)
    assert (result.read, result.loaded, result.position) == (10, 10, 10)
    assert query(paths.snapshot, "SELECT count(*) FROM touchpoints")[1] == [(10,)]
    with pytest.raises(ProjectionError, match="read-only"):
        query(paths.snapshot, "DELETE FROM touchpoints")


def test_one_projector_at_a_time(sqlite_store: EventStore, paths: ProjectionPaths) -> None:
    with projector_lock(paths.working), pytest.raises(ProjectionError, match="already running"):
        operations.catch_up(sqlite_store, paths, PSEUDONYMS)


def test_rebuild_swaps_in_whole_while_a_reader_keeps_the_old_snapshot(
    sqlite_store: EventStore, paths: ProjectionPaths
) -> None:
    append(sqlite_store, *calls(6))
    operations.catch_up(sqlite_store, paths, PSEUDONYMS)
    reader = duckdb.connect(str(paths.snapshot), read_only=True)
    append(sqlite_store, *calls(6, start=6))
    result = operations.rebuild(sqlite_store, paths, PSEUDONYMS)
    assert result.read == 12
    assert reader.execute("SELECT count(*) FROM touchpoints").fetchone() == (6,)  # the old file, whole
    reader.close()
    assert query(paths.snapshot, "SELECT count(*) FROM touchpoints")[1] == [(12,)]
    assert not paths.working.with_name(paths.working.name + ".rebuild").exists()


def test_a_poison_event_stops_a_rebuild_and_keeps_the_current_projection(
    sqlite_store: EventStore, paths: ProjectionPaths
) -> None:
    from eventsourcing.persistence import StoredEvent

    append(sqlite_store, *calls(4))
    operations.catch_up(sqlite_store, paths, PSEUDONYMS)
    sqlite_store.recorder.append([StoredEvent("bad", 1, "journey.domain.events:TouchRecorded", b"[]")])
    with pytest.raises(ProjectionError, match="position 5"):
        operations.rebuild(sqlite_store, paths, PSEUDONYMS)
    assert query(paths.snapshot, "SELECT count(*) FROM touchpoints")[1] == [(4,)]


def test_follow_keeps_up_and_stops_cleanly(sqlite_store: EventStore, paths: ProjectionPaths,
                                          caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    # a logging.config.dictConfig elsewhere in the session (import-linter's) disables existing loggers
    monkeypatch.setattr(logging.getLogger("journey.projector"), "disabled", False)
    caplog.set_level(logging.INFO, logger="journey.projector")
    stop = threading.Event()
    cycles: list[int] = []
    follower = threading.Thread(target=operations.follow, args=(sqlite_store, paths, PSEUDONYMS),
                                kwargs={"interval": 0.05, "stop": stop, "on_cycle": lambda r: cycles.append(r.read)})
    follower.start()
    append(sqlite_store, *calls(5))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if paths.snapshot.exists() and query(paths.snapshot, "SELECT position FROM projection_status")[1] == [(5,)]:
            break
        time.sleep(0.05)
    append(sqlite_store, *calls(2, start=5))
    while time.monotonic() < deadline:
        if query(paths.snapshot, "SELECT position FROM projection_status")[1] == [(7,)]:
            break
        time.sleep(0.05)
    stop.set()
    follower.join(timeout=10)
    assert not follower.is_alive()
    assert sum(cycles) == 7
    assert query(paths.snapshot, "SELECT count(*) FROM touchpoints")[1] == [(7,)]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("read ")]
    assert len(lines) == len([c for c in cycles if c])  # one line per cycle that loaded something
    last = re.fullmatch(r"read (\d+) events to position (\d+); store head (\d+), lag (\d+) events; "
                        r"load [\d.]+ s, derive [\d.]+ s \((.+)\), publish [\d.]+ s \((.+)\)", lines[-1])
    assert last is not None, lines[-1]
    # the second batch derives its two customers only; the second slot is new: copied whole
    assert last.groups() == ("2", "7", "7", "0", "2 customers", "whole copy")
    operations.catch_up(sqlite_store, paths, PSEUDONYMS)  # the lock was released


def test_follow_polls_again_at_once_after_a_cycle_that_loaded_something(
        sqlite_store: EventStore, paths: ProjectionPaths) -> None:
    """Events stored while a cycle runs wait for no poll interval: only an empty cycle pauses."""
    stop = threading.Event()
    cycles: list[int] = []

    def on_cycle(result: object) -> None:
        cycles.append(result.read)  # type: ignore[attr-defined]
        if len(cycles) == 1:
            append(sqlite_store, *calls(2, start=5))  # arrives while the follower works
        elif sum(cycles) == 7:
            stop.set()

    append(sqlite_store, *calls(5))
    follower = threading.Thread(target=operations.follow, args=(sqlite_store, paths, PSEUDONYMS),
                                kwargs={"interval": 600, "stop": stop, "on_cycle": on_cycle})
    started = time.monotonic()
    follower.start()
    follower.join(timeout=60)
    assert not follower.is_alive() and time.monotonic() - started < 60
    assert cycles == [5, 2]
    assert query(paths.snapshot, "SELECT count(*) FROM touchpoints")[1] == [(7,)]


def test_an_idle_follower_folds_a_large_write_ahead_log_into_the_working_file(
        sqlite_store: EventStore, paths: ProjectionPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cycle that finds nothing checkpoints the working file once its log passes the limit,
    so the next burst's derive pays no checkpoint; the projection reads the same after."""
    from journey.projections import projector as projecting

    monkeypatch.setattr(projecting, "IDLE_CHECKPOINT", 0)
    wal = paths.working.with_name(paths.working.name + ".wal")
    stop = threading.Event()
    seen: list[tuple[int, bool]] = []

    def on_cycle(result: object) -> None:
        seen.append((result.read, wal.exists()))  # type: ignore[attr-defined]
        if len(seen) == 3:
            stop.set()

    append(sqlite_store, *calls(5))
    operations.follow(sqlite_store, paths, PSEUDONYMS, interval=0.01, stop=stop, on_cycle=on_cycle)
    # the first cycle loads and derives (its log stays), the second finds nothing and folds it in
    assert seen == [(5, True), (0, True), (0, False)]
    assert query(paths.snapshot, "SELECT count(*) FROM touchpoints")[1] == [(5,)]


def test_as_of_build_goes_to_its_own_file(sqlite_store: EventStore, paths: ProjectionPaths, tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    day = datetime(2025, 5, 1, tzinfo=timezone.utc)
    append(sqlite_store, *calls(3), recorded_at=day)
    append(sqlite_store, *calls(2, start=3), recorded_at=day + timedelta(days=1))
    out = tmp_path / "then.duckdb"
    result = operations.build_as_of(sqlite_store, out, day + timedelta(hours=1), PSEUDONYMS)
    assert (result.read, result.loaded) == (5, 3)
    con = duckdb.connect(str(out), read_only=True)
    assert con.execute("SELECT count(*) FROM touchpoints").fetchone() == (3,)
    assert not paths.snapshot.exists()
