from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.tests.persistence import ApplicationRecorderTestCase

from journey.store.recorder import JourneyRecorder
from journey.store.sqlite import SQLiteJourneyRecorder, open_sqlite
from tests.store.recorder_contract import RecorderContract, event


class TestSQLiteRecorder(RecorderContract):
    @pytest.fixture(autouse=True)
    def _tmp(self, tmp_path: Path) -> None:
        self.path = tmp_path / "events.sqlite"

    def recorder(self) -> JourneyRecorder:
        return open_sqlite(str(self.path))

    def test_events_survive_reopening_the_file(self) -> None:
        self.recorder().append([event("a")])
        assert self.recorder().max_notification_id() == 1


class TestLibraryContractOnSQLite(ApplicationRecorderTestCase[SQLiteJourneyRecorder]):
    """The eventsourcing library's own application-recorder contract."""

    def new_originator_id(self) -> str:
        return str(uuid4())

    def create_recorder(self) -> SQLiteJourneyRecorder:
        recorder = SQLiteJourneyRecorder(SQLiteDatastore(":memory:", originator_id_type="text"))
        recorder.create_table()
        return recorder

    test_performance = None  # type: ignore[assignment]  # timing belongs in bench/
    test_concurrent_throughput = None  # type: ignore[assignment]
    test_concurrent_no_conflicts = None  # type: ignore[assignment]
