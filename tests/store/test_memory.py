from __future__ import annotations

from journey.store.recorder import InMemoryJourneyRecorder, JourneyRecorder
from tests.store.recorder_contract import RecorderContract


class TestInMemoryRecorder(RecorderContract):
    def recorder(self) -> JourneyRecorder:
        return InMemoryJourneyRecorder()
