"""Stored events carry a version; old versions are upcast as they are read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from journey.domain.events import TouchRecorded, recorded_class
from journey.store.mapper import JourneyMapper
from tests.touches import touch


def test_stored_event_class_follows_the_touch_type() -> None:
    assert recorded_class("call").__name__ == "TouchRecorded"
    assert recorded_class("identity_link").__name__ == "IdentityLinked"
    assert recorded_class("identity_unlink").__name__ == "IdentityUnlinked"


def test_the_state_holds_the_touch_and_class_version_2() -> None:
    mapper = JourneyMapper()
    record = touch()
    stored = mapper.to_stored_event(TouchRecorded("e-1", 1, record, "2025-03-01T06:30:00+00:00"))
    assert stored.topic == get_topic(TouchRecorded)
    assert mapper.transcoder.decode(stored.state) == {
        "touch": record, "recorded_at": "2025-03-01T06:30:00+00:00", "class_version": 2}
    assert mapper.to_domain_event(stored) == TouchRecorded("e-1", 1, record, "2025-03-01T06:30:00+00:00")


def test_a_version_1_state_is_read_unchanged() -> None:
    """v1 stored everything in the clear; v2 may seal personal fields (upcast: no-op)."""
    mapper = JourneyMapper()
    record = touch()
    v1 = b'{"touch":' + orjson.dumps(record) + b',"recorded_at":"2025-03-01T06:30:00+00:00"}'
    stored = StoredEvent("e-1", 1, get_topic(TouchRecorded), v1)
    assert mapper.to_domain_event(stored) == TouchRecorded("e-1", 1, record, "2025-03-01T06:30:00+00:00")


@dataclass(frozen=True)
class TouchRecordedV3(TouchRecorded):
    """A later version that renamed ``channel`` to ``medium`` (an example migration)."""

    class_version: ClassVar[int] = 3

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        state["touch"]["medium"] = state["touch"].pop("channel", None)


def test_old_events_are_upcast_one_version_at_a_time_when_read() -> None:
    mapper = JourneyMapper()
    v2 = mapper.to_stored_event(TouchRecorded("e-1", 1, touch(channel="phone"), "2025-03-01T06:30:00+00:00"))
    for state in (v2.state, v2.state.replace(b',"class_version":2', b"")):  # from v2, and from v1
        event = mapper.to_domain_event(StoredEvent(v2.originator_id, 1, get_topic(TouchRecordedV3), state))
        assert event.touch["medium"] == "phone"
        assert "channel" not in event.touch
        stored_v3 = mapper.to_stored_event(event)
        assert mapper.transcoder.decode(stored_v3.state)["class_version"] == 3
