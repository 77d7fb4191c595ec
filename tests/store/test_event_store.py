"""The event store on every adapter: idempotency, conflicts, atomic batches, order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from journey.domain.touch import parse_touch
from journey.store.event_store import EventStore, Submission
from journey.store.sqlite import SQLiteJourneyRecorder, open_sqlite
from tests.touches import raw, touch


def sub(record: dict[str, Any], line: int = 1) -> Submission:
    data = raw(record)
    return Submission.of(parse_touch(data), "test.jsonl", f"line {line}", data)


def test_same_event_id_twice_is_stored_once(store: EventStore) -> None:
    first = store.append([sub(touch(event_id="e-1"))])
    again = store.append([sub(touch(event_id="e-1"))])
    assert (first.accepted, first.duplicates) == (1, 0)
    assert (again.accepted, again.duplicates, again.quarantined) == (0, 1, 0)
    assert store.position() == 1


def test_repeat_within_one_batch_is_a_duplicate(store: EventStore) -> None:
    outcome = store.append([sub(touch(event_id="e-1")), sub(touch(event_id="e-1"), 2)])
    assert (outcome.accepted, outcome.duplicates) == (1, 1)


def test_same_event_id_with_other_content_is_a_conflict_and_keeps_the_first(store: EventStore) -> None:
    store.append([sub(touch(event_id="e-1", channel="phone"))])
    outcome = store.append([sub(touch(event_id="e-1", channel="web"), line=7)])
    assert (outcome.accepted, outcome.duplicates, outcome.quarantined) == (0, 0, 1)
    [entry] = store.quarantine()
    assert entry.rejection.code == "conflict"
    assert entry.rejection.locator == "line 7"
    assert "differs in: channel" in entry.rejection.reason
    assert b'"channel":"web"' in entry.rejection.raw
    assert store.get("e-1").touch["channel"] == "phone"  # type: ignore[union-attr]


def test_conflict_within_one_batch_is_quarantined(store: EventStore) -> None:
    outcome = store.append([sub(touch(event_id="e-1")), sub(touch(event_id="e-1", channel="web"), 2)])
    assert (outcome.accepted, outcome.quarantined) == (1, 1)


def test_stored_touch_is_the_validated_form_with_recorded_at(store: EventStore) -> None:
    store.append([sub(touch(customer={"phone": "+7 (916) 123-45-67"}))])
    [(position, event)] = list(store.read())
    assert position == 1
    assert event.touch["customer"] == {"phone": "+79161234567"}
    assert event.recorded_at.endswith("+00:00")
    assert "recorded_at" not in event.touch
    assert event.to_touch().customer.phone == "+79161234567"


def test_read_returns_store_order_across_pages(store: EventStore) -> None:
    store.append([sub(touch(event_id=f"e-{i}"), i) for i in range(25)])
    store.append([sub(touch(event_id=f"f-{i}"), i) for i in range(5)])
    events = list(store.read(batch=7))
    assert [p for p, _ in events] == list(range(1, 31))
    assert [e.event_id for _, e in events][:3] == ["e-0", "e-1", "e-2"]
    assert len(list(store.read(start=29))) == 2


def test_recorded_at_is_the_stores_own_time_of_the_first_event_from_a_position(store: EventStore) -> None:
    first, later = datetime(2025, 3, 1, 9, tzinfo=timezone.utc), datetime(2025, 3, 1, 9, 5, tzinfo=timezone.utc)
    store.append([sub(touch(event_id="e-1")), sub(touch(event_id="e-2"), 2)], recorded_at=first)
    store.append([sub(touch(event_id="e-3"))], recorded_at=later.astimezone(timezone(timedelta(hours=3))))
    assert store.recorded_at(1) == (1, first)
    assert store.recorded_at(3) == (3, later)
    assert store.recorded_at(3)[1].tzinfo == timezone.utc
    assert store.recorded_at(4) is None


def test_identity_events_are_stored_under_their_own_topic(store: EventStore) -> None:
    store.append([sub(touch("identity_link", event_id="l-1")), sub(touch("call", event_id="c-1"))])
    kinds = [type(e).__name__ for _, e in store.read()]
    assert kinds == ["IdentityLinked", "TouchRecorded"]


class _FailsMidBatch(SQLiteJourneyRecorder):
    def _insert_events(self, c, stored_events, **kwargs):  # noqa: ANN001, ANN003, ANN202
        super()._insert_events(c, stored_events, **kwargs)
        raise OSError("disk full (simulated after the rows were written)")


def test_a_failing_batch_leaves_nothing_behind(tmp_path: Path) -> None:
    path = str(tmp_path / "events.sqlite")
    open_sqlite(path)
    failing = _FailsMidBatch(open_sqlite(path).datastore)
    with pytest.raises(OSError, match="disk full"):
        EventStore(failing).append([sub(touch(event_id=f"e-{i}")) for i in range(100)])
    fresh = EventStore(open_sqlite(path))
    assert fresh.position() == 0
    assert fresh.append([sub(touch(event_id=f"e-{i}")) for i in range(100)]).accepted == 100


def test_a_tracked_batch_is_stored_once(store: EventStore) -> None:
    from eventsourcing.persistence import Tracking

    from journey.store.event_store import AlreadyTracked

    first = store.append([sub(touch(event_id="k-1"))], tracking=Tracking("kafka:touches:0", 10))
    assert first.accepted == 1
    assert store.recorder.max_tracking_id("kafka:touches:0") == 10
    with pytest.raises(AlreadyTracked):
        store.append([sub(touch(event_id="k-2"))], tracking=Tracking("kafka:touches:0", 10))
    assert store.get("k-2") is None
    store.append([], tracking=Tracking("kafka:touches:0", 12))  # only rejections or nothing: still tracked
    assert store.recorder.max_tracking_id("kafka:touches:0") == 12
