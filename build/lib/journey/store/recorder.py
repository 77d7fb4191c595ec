"""The recorder port: eventsourcing's application recorder plus the quarantine.

A batch of stored events, the rejections found with it, and the quarantine entries
it resolves are written in one transaction: whole or not at all.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from eventsourcing.persistence import ProcessRecorder, StoredEvent, Tracking
from eventsourcing.popo import POPOProcessRecorder

from journey.store.records import QuarantineEntry, Rejection

__all__ = ["InMemoryJourneyRecorder", "JourneyRecorder", "Resolution"]

Resolution = tuple[Sequence[str], Sequence[int], str]
"""Quarantine entries a batch resolves: by event_id, by entry id, and the note."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class JourneyRecorder(ProcessRecorder, ABC):
    """Port of the event store's database. One contract test covers every adapter."""

    def append(
        self,
        stored_events: Sequence[StoredEvent],
        rejections: Sequence[Rejection] = (),
        resolution: Resolution | None = None,
        tracking: Tracking | None = None,
    ) -> Sequence[int]:
        """Atomically insert events, quarantine rejections, resolve entries, and
        record how far an upstream source (a Kafka partition) has been consumed.

        Raises eventsourcing's ``IntegrityError`` (and writes nothing) when a stream
        id is already stored or the tracking position was already recorded.
        """
        return self.insert_events(
            stored_events, rejections=rejections, resolution=resolution, tracking=tracking
        ) or []

    @abstractmethod
    def select_streams(self, originator_ids: Sequence[str]) -> dict[str, StoredEvent]:
        """The stored first events of these streams, where they exist."""

    @abstractmethod
    def select_rows(self, start: int, limit: int) -> list[tuple[int, str, str]]:
        """Notifications from position ``start`` on, as ``(position, topic, state
        as text)`` rows: a bulk read without an object per event."""

    @abstractmethod
    def select_lines(self, start: int, limit: int) -> tuple[list[int], str]:
        """Notifications from ``start`` on as JSON Lines built by the database, one
        ``{"p": position, "t": topic, "s": state}`` a line, with their positions:
        the projector's bulk read (DuckDB parses the lines in one pass)."""

    @abstractmethod
    def select_quarantine(
        self, *, open_only: bool = True, after_id: int = 0, limit: int = 1000
    ) -> list[QuarantineEntry]:
        """Quarantine entries in the order they were written."""

    @abstractmethod
    def count_quarantine(self, *, open_only: bool = True) -> int:
        """How many entries (open ones only, by default) the quarantine holds."""

    @abstractmethod
    def dismiss_quarantine(self, ids: Sequence[int], note: str) -> int:
        """Close entries nobody will fix (kept, never deleted); returns how many."""


class InMemoryJourneyRecorder(POPOProcessRecorder, JourneyRecorder):
    """In-memory adapter for unit tests of the core."""

    def __init__(self) -> None:
        super().__init__()
        self._quarantine: list[QuarantineEntry] = []

    def _insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        with self._database_lock:
            self._assert_uniqueness(stored_events, tracking=kwargs.get("tracking"))
            ids = self._update_table(stored_events, tracking=kwargs.get("tracking"))
            now = utcnow()
            for rejection in kwargs.get("rejections") or ():
                entry = QuarantineEntry(len(self._quarantine) + 1, now, rejection)
                self._quarantine.append(entry)
            if kwargs.get("resolution"):
                self._resolve(*kwargs["resolution"], now)
            return ids

    def _resolve(
        self, event_ids: Sequence[str], ids: Sequence[int], note: str, now: datetime
    ) -> None:
        wanted, numbers = set(event_ids), set(ids)
        for index, entry in enumerate(self._quarantine):
            hit = entry.id in numbers or (
                entry.rejection.event_id in wanted and entry.rejection.code != "conflict"
            )
            if hit and entry.resolved_at is None:
                self._quarantine[index] = QuarantineEntry(
                    entry.id, entry.quarantined_at, entry.rejection, now, note
                )

    def select_streams(self, originator_ids: Sequence[str]) -> dict[str, StoredEvent]:
        found = {}
        for originator_id in originator_ids:
            events = self.select_events(originator_id, limit=1)
            if events:
                found[originator_id] = events[0]
        return found

    def select_rows(self, start: int, limit: int) -> list[tuple[int, str, str]]:
        return [(n.id, n.topic, n.state.decode("utf-8", "replace"))
                for n in self.select_notifications(start, limit)]

    def select_lines(self, start: int, limit: int) -> tuple[list[int], str]:
        rows = self.select_rows(start, limit)
        lines = (f'{{"p":{p},"t":{json.dumps(t)},"s":{s}}}' for p, t, s in rows)
        return [p for p, _, _ in rows], "\n".join(lines)

    def select_quarantine(
        self, *, open_only: bool = True, after_id: int = 0, limit: int = 1000
    ) -> list[QuarantineEntry]:
        with self._database_lock:
            rows = [
                e
                for e in self._quarantine
                if e.id > after_id and not (open_only and e.resolved_at is not None)
            ]
        return rows[:limit]

    def count_quarantine(self, *, open_only: bool = True) -> int:
        return len(self.select_quarantine(open_only=open_only, limit=2**62))

    def dismiss_quarantine(self, ids: Sequence[int], note: str) -> int:
        with self._database_lock:
            before = self.count_quarantine()
            self._resolve((), ids, f"dismissed: {note}", utcnow())
            return before - self.count_quarantine()
