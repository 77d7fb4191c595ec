"""The event store: accepted touches stored once and for good.

Idempotency: a touch's stream id derives from its ``event_id``; a repeat with the
same content is a duplicate (stored once), a repeat with other content is a
conflict (quarantined, never overwriting the stored fact).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, cast

from eventsourcing.persistence import IntegrityError, StoredEvent

from journey.domain.events import Recorded, recorded_class, stream_id
from journey.domain.touch import TouchBase
from journey.errors import EventStoreError
from journey.store.recorder import JourneyRecorder
from journey.store.records import QuarantineEntry, Rejection
from journey.store.mapper import JourneyMapper

__all__ = ["AppendOutcome", "EventStore", "Submission"]

_RETRIES = 5


@dataclass(frozen=True)
class Submission:
    """A validated touch with where it came from (kept to quarantine a conflict)."""

    touch: TouchBase
    source: str
    locator: str
    raw: bytes


@dataclass
class AppendOutcome:
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    positions: list[int] = field(default_factory=list)


class EventStore:
    """Appends batches atomically and reads them back in store order."""

    def __init__(self, recorder: JourneyRecorder) -> None:
        self.recorder = recorder
        self.mapper = JourneyMapper()

    def append(
        self,
        submissions: Sequence[Submission],
        rejections: Sequence[Rejection] = (),
        *,
        resolves: Sequence[int] = (),
        recorded_at: datetime | None = None,
    ) -> AppendOutcome:
        """Store a batch: new touches, rejections, and quarantine entries it fixes.

        All or nothing. ``resolves`` names quarantine entries this batch re-ingests.
        """
        when = (recorded_at or datetime.now(timezone.utc)).isoformat()
        for _attempt in range(_RETRIES):
            fresh, duplicates, conflicts = self._classify(submissions)
            events = [self._stored(s, when) for s in fresh]
            accepted_ids = [s.touch.event_id for s in fresh]
            try:
                positions = self.recorder.append(
                    events,
                    [*rejections, *conflicts],
                    (accepted_ids, list(resolves), "re-ingested") if (accepted_ids or resolves) else None,
                )
            except IntegrityError:
                continue  # another writer stored one of these meanwhile: classify again
            return AppendOutcome(
                accepted=len(events),
                duplicates=duplicates,
                quarantined=len(rejections) + len(conflicts),
                positions=list(positions),
            )
        raise EventStoreError(
            f"could not append a batch after {_RETRIES} attempts: other writers keep "
            "storing the same event_ids; retry the ingest (nothing of this batch was stored)"
        )

    def _classify(
        self, submissions: Sequence[Submission]
    ) -> tuple[list[Submission], int, list[Rejection]]:
        firsts: dict[str, Submission] = {}
        duplicates = 0
        conflicts: list[Rejection] = []
        for submission in submissions:
            event_id = submission.touch.event_id
            earlier = firsts.get(event_id)
            if earlier is None:
                firsts[event_id] = submission
            elif earlier.touch.content() == submission.touch.content():
                duplicates += 1
            else:
                conflicts.append(_conflict(submission, earlier.touch.content()))
        stored = self.recorder.select_streams([stream_id(e) for e in firsts])
        fresh = []
        for event_id, submission in firsts.items():
            existing = stored.get(stream_id(event_id))
            if existing is None:
                fresh.append(submission)
                continue
            known = self.to_event(existing).touch
            known = {k: v for k, v in known.items() if k != "recorded_at"}
            if known == submission.touch.content():
                duplicates += 1
            else:
                conflicts.append(_conflict(submission, known))
        return fresh, duplicates, conflicts

    def _stored(self, submission: Submission, recorded_at: str) -> StoredEvent:
        touch = submission.touch
        state = touch.content()
        state["recorded_at"] = recorded_at
        cls = recorded_class(state["type"])
        event = cls(originator_id=stream_id(touch.event_id), originator_version=1, touch=state)
        return self.mapper.to_stored_event(event)

    def to_event(self, stored: StoredEvent) -> Recorded:
        return cast(Recorded, self.mapper.to_domain_event(stored))

    def read(self, start: int = 1, *, batch: int = 10_000, stop: int | None = None) -> Iterator[tuple[int, Recorded]]:
        """Every stored event from position ``start`` on, in store order."""
        while True:
            notifications = self.recorder.select_notifications(start, batch, stop=stop)
            for notification in notifications:
                yield notification.id, self.to_event(notification)
            if len(notifications) < batch:
                return
            start = notifications[-1].id + 1

    def get(self, event_id: str) -> Recorded | None:
        """The stored event of a producer ``event_id``, if any."""
        found = self.recorder.select_streams([stream_id(event_id)])
        return self.to_event(found[stream_id(event_id)]) if found else None

    def position(self) -> int:
        """The position of the last stored event (0 when empty)."""
        return self.recorder.max_notification_id() or 0

    def quarantine(self, *, open_only: bool = True, after_id: int = 0, limit: int = 1000) -> list[QuarantineEntry]:
        return self.recorder.select_quarantine(open_only=open_only, after_id=after_id, limit=limit)


def _conflict(submission: Submission, known: dict[str, Any]) -> Rejection:
    new = submission.touch.content()
    differs = sorted(k for k in set(new) | set(known) if new.get(k) != known.get(k))
    return Rejection(
        source=submission.source,
        locator=submission.locator,
        raw=submission.raw,
        code="conflict",
        reason=(
            f"event_id {submission.touch.event_id!r} was already accepted with different "
            f"content (differs in: {', '.join(differs)}); events are facts: send a "
            "correction as a new touch with its own event_id"
        ),
        event_id=submission.touch.event_id,
    )
