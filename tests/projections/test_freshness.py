"""Freshness of the published snapshot against a real SQLite store and real DuckDB files."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from journey.errors import ProjectionError
from journey.projections import operations
from journey.projections.freshness import Lag, lag, published_at, published_position, wait_for_position
from journey.projections.operations import ProjectionPaths
from journey.store.event_store import EventStore
from journey.store.sqlite import open_sqlite
from tests.projections.helpers import PSEUDONYMS, append
from tests.touches import touch

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path: Path) -> EventStore:
    return EventStore(open_sqlite(str(tmp_path / "events.sqlite")))


@pytest.fixture
def paths(tmp_path: Path) -> ProjectionPaths:
    return ProjectionPaths(tmp_path / "projection.duckdb", tmp_path / "analytics.duckdb")


def calls(*numbers: int) -> list[dict]:
    return [touch("call", f"c-{i}", customer={"customer_id": f"P-{i % 3}"}) for i in numbers]


def test_lag_is_the_recorded_time_the_snapshot_misses_by_the_stores_clock(
        store: EventStore, paths: ProjectionPaths) -> None:
    append(store, *calls(1, 2), recorded_at=T0)
    operations.catch_up(store, paths, PSEUDONYMS)
    append(store, *calls(3), recorded_at=T0 + timedelta(minutes=5))
    append(store, *calls(4, 5), recorded_at=T0 + timedelta(minutes=5, seconds=40))
    published = published_position(paths.snapshot)
    assert published == 2
    assert lag(store, published, store.position()) == Lag(3, 40.0, T0 + timedelta(minutes=5))
    operations.catch_up(store, paths, PSEUDONYMS)
    assert lag(store, published_position(paths.snapshot) or 0, store.position()) == Lag(0, 0.0, None)


def test_one_unpublished_batch_is_behind_in_events_not_in_recorded_time(store: EventStore) -> None:
    append(store, *calls(1, 2, 3), recorded_at=T0)
    assert lag(store, 0, store.position()) == Lag(3, 0.0, T0)


def test_published_at_is_when_the_snapshot_file_was_written(store: EventStore, paths: ProjectionPaths) -> None:
    assert published_at(paths.snapshot) is None
    assert published_position(paths.snapshot) is None
    append(store, *calls(1))
    before = datetime.now(timezone.utc)
    operations.catch_up(store, paths, PSEUDONYMS)
    after = datetime.now(timezone.utc)
    when = published_at(paths.snapshot)
    assert when is not None and before - timedelta(seconds=1) <= when <= after + timedelta(seconds=1)
    assert when.tzinfo == timezone.utc


def test_wait_returns_once_the_position_is_published(store: EventStore, paths: ProjectionPaths) -> None:
    append(store, *calls(1))
    operations.catch_up(store, paths, PSEUDONYMS)
    append(store, *calls(2, 3))
    assert wait_for_position(paths.snapshot, 1, timeout=0) == 1
    later = threading.Timer(0.3, operations.catch_up, args=(store, paths, PSEUDONYMS))
    later.start()
    started = time.monotonic()
    try:
        assert wait_for_position(paths.snapshot, 3, timeout=30, poll=0.05) == 3
    finally:
        later.join()
    assert 0.3 <= time.monotonic() - started < 30


def test_wait_times_out_saying_how_far_it_got_and_what_to_do(store: EventStore, paths: ProjectionPaths) -> None:
    append(store, *calls(1, 2))
    operations.catch_up(store, paths, PSEUDONYMS)
    started = time.monotonic()
    with pytest.raises(ProjectionError) as error:
        wait_for_position(paths.snapshot, 5, timeout=0.3, poll=0.05)
    assert 0.3 <= time.monotonic() - started < 5
    message = str(error.value)
    assert "position 5 was not published within 0.3 s" in message
    assert f"the snapshot at {paths.snapshot} holds position 2" in message
    assert "journey project --follow" in message


def test_wait_with_nothing_published_says_so(paths: ProjectionPaths) -> None:
    with pytest.raises(ProjectionError, match="nothing was published at"):
        wait_for_position(paths.snapshot, 1, timeout=0.1, poll=0.05)
    with pytest.raises(ValueError, match="poll must be positive"):
        wait_for_position(paths.snapshot, 1, timeout=1, poll=0)
