from __future__ import annotations

from journey.store.recorder import InMemoryJourneyRecorder, JourneyRecorder
from tests.store.recorder_contract import RecorderContract


class TestInMemoryRecorder(RecorderContract):
    def recorder(self) -> JourneyRecorder:
        return InMemoryJourneyRecorder()

    def test_tracking_is_written_with_the_events(self) -> None:
        """The in-memory adapter keeps no tracking (no Kafka in unit tests)."""
        r = self.recorder()
        assert not hasattr(r, "max_tracking_id")
