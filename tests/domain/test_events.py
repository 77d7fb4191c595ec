"""Stored events carry a version; old versions are upcast as they are read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from eventsourcing.utils import get_topic

from journey.domain.events import TouchRecorded, recorded_class
from journey.store.mapper import JourneyMapper
from tests.touches import touch


def test_stored_event_class_follows_the_touch_type() -> None:
    assert recorded_class("call").__name__ == "TouchRecorded"
    assert recorded_class("identity_link").__name__ == "IdentityLinked"
    assert recorded_class("identity_unlink").__name__ == "IdentityUnlinked"


def test_version_1_state_holds_the_touch_and_no_class_version() -> None:
    mapper = JourneyMapper()
    record = touch()
    stored = mapper.to_stored_event(TouchRecorded("e-1", 1, record, "2025-03-01T06:30:00+00:00"))
    assert stored.topic == get_topic(TouchRecorded)
    assert mapper.transcoder.decode(stored.state) == {"touch": record, "recorded_at": "2025-03-01T06:30:00+00:00"}
    assert mapper.to_domain_event(stored) == TouchRecorded("e-1", 1, record, "2025-03-01T06:30:00+00:00")


@dataclass(frozen=True)
class TouchRecordedV2(TouchRecorded):
    """A later version that renamed ``channel`` to ``medium`` (an example migration)."""

    class_version: ClassVar[int] = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["touch"]["medium"] = state["touch"].pop("channel", None)


def test_old_events_are_upcast_one_version_at_a_time_when_read() -> None:
    mapper = JourneyMapper()
    v1 = mapper.to_stored_event(TouchRecorded("e-1", 1, touch(channel="phone"), "2025-03-01T06:30:00+00:00"))
    as_v2 = type(v1)(v1.originator_id, 1, get_topic(TouchRecordedV2), v1.state)
    event = mapper.to_domain_event(as_v2)
    assert event.touch["medium"] == "phone"
    assert "channel" not in event.touch
    stored_v2 = mapper.to_stored_event(event)
    assert mapper.transcoder.decode(stored_v2.state)["class_version"] == 2
