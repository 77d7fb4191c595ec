"""``journey status``'s facts on a real SQLite store and real DuckDB files."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from journey.projections import operations
from journey.projections.operations import ProjectionPaths
from journey.services.status import system_status
from journey.store.event_store import EventStore
from journey.store.sqlite import open_sqlite
from tests.projections.helpers import PSEUDONYMS, append
from tests.touches import touch

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)


def test_status_shows_how_far_and_how_long_the_snapshot_is_behind(tmp_path: Path) -> None:
    store = EventStore(open_sqlite(str(tmp_path / "events.sqlite")))
    paths = ProjectionPaths(tmp_path / "projection.duckdb", tmp_path / "analytics.duckdb")
    append(store, touch(event_id="a"), recorded_at=T0)
    nothing = system_status(store, "here", paths.snapshot)
    assert {k: nothing[k] for k in ("position", "projection_position", "projection_lag", "projection_lag_seconds",
                                    "unpublished_since", "projection_published_at")} == {
        "position": 1, "projection_position": None, "projection_lag": 1, "projection_lag_seconds": 0.0,
        "unpublished_since": T0.isoformat(), "projection_published_at": None}
    operations.catch_up(store, paths, PSEUDONYMS)
    append(store, touch(event_id="b"), recorded_at=T0 + timedelta(seconds=90))
    append(store, touch(event_id="c"), recorded_at=T0 + timedelta(seconds=100.5))
    behind = system_status(store, "here", paths.snapshot)
    assert (behind["position"], behind["projection_position"], behind["projection_lag"]) == (3, 1, 2)
    assert behind["projection_lag_seconds"] == 10.5
    assert behind["unpublished_since"] == (T0 + timedelta(seconds=90)).isoformat()
    published = datetime.fromtimestamp(paths.snapshot.stat().st_mtime, timezone.utc)
    assert behind["projection_published_at"] == published.isoformat()
    operations.catch_up(store, paths, PSEUDONYMS)
    caught_up = system_status(store, "here", paths.snapshot)
    assert (caught_up["projection_lag"], caught_up["projection_lag_seconds"], caught_up["unpublished_since"]) == (
        0, 0.0, None)
    assert caught_up["projection_published_at"] >= published.isoformat()
