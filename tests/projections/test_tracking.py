"""The DuckDB tracking recorder passes the eventsourcing library's own contract."""

from __future__ import annotations

import duckdb
from eventsourcing.tests.persistence import TrackingRecorderTestCase

from journey.projections.tracking import DuckDBTrackingRecorder


class TestDuckDBTrackingRecorder(TrackingRecorderTestCase):
    def create_recorder(self) -> DuckDBTrackingRecorder:
        con = duckdb.connect()
        con.execute("CREATE SCHEMA internal")
        return DuckDBTrackingRecorder(con)

    test_wait = None  # type: ignore[assignment]  # polls with timing; the projector never waits


def test_tracking_rolls_back_with_the_rows() -> None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA internal; CREATE TABLE rows (x INT)")
    recorder = DuckDBTrackingRecorder(con)
    from eventsourcing.persistence import Tracking

    con.begin()
    con.execute("INSERT INTO rows VALUES (1)")
    recorder.insert_tracking(Tracking("p", 5))
    con.rollback()
    assert recorder.max_tracking_id("p") is None
    assert con.execute("SELECT count(*) FROM rows").fetchone() == (0,)
