"""The contract of the recorder port. Each adapter's test module subclasses it.

It adds the quarantine and batch-atomicity contract to the eventsourcing library's
own recorder contract tests, which each adapter also runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent, Tracking

from journey.store.recorder import JourneyRecorder
from journey.store.records import Rejection


def event(stream: str, state: bytes = b"{}") -> StoredEvent:
    return StoredEvent(stream, 1, "journey.domain.events:TouchRecorded", state)


def rejection(n: int, event_id: str | None = None, code: str = "bad_json") -> Rejection:
    return Rejection("file.jsonl", f"line {n}", b"\xffraw bytes " + str(n).encode(), code,
                     f"reason {n}", event_id)


class RecorderContract(ABC):
    @abstractmethod
    def recorder(self) -> JourneyRecorder:
        """A new, empty recorder of the adapter under test."""

    def test_append_returns_consecutive_positions_in_order(self) -> None:
        r = self.recorder()
        assert r.append([event("a"), event("b")]) == [1, 2]
        assert r.append([event("c")]) == [3]
        assert [n.originator_id for n in r.select_notifications(1, 10)] == ["a", "b", "c"]
        assert r.max_notification_id() == 3

    def test_a_batch_with_a_stored_stream_writes_nothing_at_all(self) -> None:
        r = self.recorder()
        r.append([event("a")])
        with pytest.raises(IntegrityError):
            r.append([event("b"), event("a")], [rejection(1)])
        assert [n.originator_id for n in r.select_notifications(1, 10)] == ["a"]
        assert r.count_quarantine(open_only=False) == 0

    def test_rows_are_the_notifications_as_text(self) -> None:
        r = self.recorder()
        r.append([event("a", '{"name":"Ана"}'.encode()), event("b"), event("c")])
        assert r.select_rows(2, 10) == [(n.id, n.topic, n.state.decode()) for n in r.select_notifications(2, 10)]
        assert r.select_rows(1, 1) == [(1, "journey.domain.events:TouchRecorded", '{"name":"Ана"}')]
        assert r.select_rows(9, 10) == []

    def test_lines_are_the_notifications_as_json_lines(self) -> None:
        import json

        r = self.recorder()
        r.append([event("a", '{"name":"Ана \\n"}'.encode()), event("b", b"not json"), event("c")])
        positions, text = r.select_lines(2, 10)
        assert positions == [2, 3]
        assert text.split("\n")[0] == '{"p":2,"t":"journey.domain.events:TouchRecorded","s":not json}'
        assert json.loads(text.split("\n")[1]) == {"p": 3, "t": "journey.domain.events:TouchRecorded", "s": {}}
        first = json.loads(r.select_lines(1, 1)[1])
        assert first["s"] == {"name": "Ана \n"}
        assert r.select_lines(9, 10) == ([], "")

    def test_select_streams_finds_only_stored_ones(self) -> None:
        r = self.recorder()
        r.append([event("a", b'{"x":1}'), event("b")])
        found = r.select_streams(["a", "zzz"])
        assert list(found) == ["a"]
        assert found["a"].state == b'{"x":1}'

    def test_select_streams_handles_large_lookups(self) -> None:
        r = self.recorder()
        r.append([event(f"s{i}") for i in range(2500)])
        assert len(r.select_streams([f"s{i}" for i in range(0, 5000, 2)])) == 1250

    def test_rejections_are_kept_whole_with_their_reason(self) -> None:
        r = self.recorder()
        r.append([], [rejection(1, "e-1"), rejection(2)])
        entries = r.select_quarantine()
        assert [e.id for e in entries] == sorted(e.id for e in entries)
        first = entries[0].rejection
        assert first == rejection(1, "e-1")
        assert r.count_quarantine() == 2

    def test_events_and_rejections_of_a_batch_land_together(self) -> None:
        r = self.recorder()
        r.append([event("a")], [rejection(1)])
        assert r.max_notification_id() == 1
        assert r.count_quarantine() == 1

    def test_accepting_an_event_id_resolves_its_open_entries_but_not_conflicts(self) -> None:
        r = self.recorder()
        r.append([], [rejection(1, "e-1"), rejection(2, "e-1", code="conflict"), rejection(3, "e-2")])
        r.append([event("e-1")], [], (["e-1"], [], "re-ingested"))
        open_ids = [e.rejection.locator for e in r.select_quarantine()]
        assert open_ids == ["line 2", "line 3"]
        closed = [e for e in r.select_quarantine(open_only=False) if e.resolved_at is not None]
        assert [(e.rejection.locator, e.resolution) for e in closed] == [("line 1", "re-ingested")]

    def test_entries_can_be_resolved_by_id(self) -> None:
        r = self.recorder()
        r.append([], [rejection(1), rejection(2)])
        first = r.select_quarantine()[0].id
        r.append([event("x")], [], ([], [first], "re-ingested"))
        assert [e.rejection.locator for e in r.select_quarantine()] == ["line 2"]

    def test_dismissed_entries_are_kept_but_closed(self) -> None:
        r = self.recorder()
        r.append([], [rejection(1), rejection(2)])
        first = r.select_quarantine()[0].id
        assert r.dismiss_quarantine([first, 999_999], "test data") == 1
        assert r.count_quarantine() == 1
        assert r.count_quarantine(open_only=False) == 2
        kept = r.select_quarantine(open_only=False)[0]
        assert kept.resolution == "dismissed: test data"

    def test_quarantine_pages_by_id(self) -> None:
        r = self.recorder()
        r.append([], [rejection(i) for i in range(5)])
        page1 = r.select_quarantine(limit=2)
        page2 = r.select_quarantine(after_id=page1[-1].id, limit=10)
        assert len(page1) == 2
        assert len(page2) == 3

    def test_tracking_is_written_with_the_events(self) -> None:
        r = self.recorder()
        r.insert_events([event("a")], tracking=Tracking("kafka:touches:0", 41))
        assert r.max_tracking_id("kafka:touches:0") == 41
