"""The event store: accepted touches stored once and for good.

Idempotency: a touch's stream id derives from its ``event_id``; a repeat with the
same content is a duplicate (stored once), a repeat with other content is a
conflict (quarantined, never overwriting the stored fact).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import orjson
from eventsourcing.persistence import IntegrityError, StoredEvent, Tracking

from journey.domain.events import Recorded, stream_id
from journey.domain.touch import TouchBase
from journey.errors import EventStoreError
from journey.store.recorder import JourneyRecorder
from journey.store.records import QuarantineEntry, Rejection
from journey.store.mapper import JourneyMapper

if TYPE_CHECKING:
    from journey.crypto.sealer import Sealer

__all__ = ["AlreadyTracked", "AppendOutcome", "EventStore", "Submission"]

_RETRIES = 5


class Submission(NamedTuple):
    """A validated touch, as canonical JSON bytes, with where it came from (kept to
    quarantine a conflict). Build one with ``Submission.of(touch)``."""

    event_id: str
    type: str
    content: bytes
    source: str
    locator: str
    raw: bytes
    sealed: bytes | None = None
    """The stored form (personal fields sealed), when a worker sealed it already."""

    @classmethod
    def of(cls, touch: TouchBase, source: str = "python", locator: str = "", raw: bytes | None = None) -> Submission:  # noqa: E501
        content = touch.content_json()
        return cls(touch.event_id, touch.type, content, source, locator, raw or content)  # type: ignore[attr-defined]


class AlreadyTracked(EventStoreError):
    """The upstream position of this batch was already recorded: it is stored already."""

    def __init__(self, tracking: Tracking) -> None:
        super().__init__(f"{tracking.application_name} already reached {tracking.notification_id}")
        self.tracking = tracking


@dataclass
class AppendOutcome:
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    positions: list[int] = field(default_factory=list)


class EventStore:
    """Appends batches atomically and reads them back in store order."""

    def __init__(self, recorder: JourneyRecorder, sealer: Sealer | None = None) -> None:
        self.recorder = recorder
        self.mapper = JourneyMapper(sealer)

    @property
    def sealer(self) -> Sealer | None:
        """Encrypts personal fields with per-customer keys (None: in the clear)."""
        return self.mapper.sealer

    def append(
        self,
        submissions: Sequence[Submission],
        rejections: Sequence[Rejection] = (),
        *,
        resolves: Sequence[int] = (),
        recorded_at: datetime | None = None,
        tracking: Tracking | None = None,
    ) -> AppendOutcome:
        """Store a batch: new touches, rejections, and quarantine entries it fixes.

        All or nothing. ``resolves`` names quarantine entries this batch re-ingests;
        ``tracking`` records the upstream position the batch reaches (exactly once:
        a position already recorded raises ``AlreadyTracked`` and stores nothing).
        """
        when = (recorded_at or datetime.now(timezone.utc)).isoformat()
        for _attempt in range(_RETRIES):
            fresh, duplicates, conflicts = self._classify(submissions)
            events = self.mapper.stored_touches(
                ((s.type, s.event_id, s.content, s.sealed) for s in fresh), when)
            accepted_ids = [s.event_id for s in fresh]
            if tracking is not None and self.recorder.has_tracking_id(
                tracking.application_name, tracking.notification_id
            ):
                raise AlreadyTracked(tracking)
            try:
                positions = self.recorder.append(
                    events,
                    [*rejections, *conflicts],
                    (accepted_ids, list(resolves), "re-ingested") if (accepted_ids or resolves) else None,
                    tracking,
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
            earlier = firsts.get(submission.event_id)
            if earlier is None:
                firsts[submission.event_id] = submission
            elif earlier.content == submission.content:
                duplicates += 1
            else:
                conflicts.append(_conflict(submission, orjson.loads(earlier.content)))
        stored = self.recorder.select_streams([stream_id(e) for e in firsts])
        fresh = []
        for event_id, submission in firsts.items():
            existing = stored.get(stream_id(event_id))
            if existing is None:
                fresh.append(submission)
                continue
            known = self.to_event(existing).touch
            if known.get("erased") or known == orjson.loads(submission.content):
                # a replay of a forgotten customer's touch is not learned again
                duplicates += 1
            else:
                conflicts.append(_conflict(submission, known))
        return fresh, duplicates, conflicts

    def to_event(self, stored: StoredEvent) -> Recorded:
        return cast(Recorded, self.mapper.to_domain_event(stored))

    def read(self, start: int = 1, *, batch: int = 10_000, stop: int | None = None) -> Iterator[tuple[int, Recorded]]:
        """Every stored event from position ``start`` on, in store order."""
        while True:
            if self.sealer is not None:
                self.sealer.refresh()
            notifications = self.recorder.select_notifications(start, batch, stop=stop)
            for notification in notifications:
                yield notification.id, self.to_event(notification)
            if len(notifications) < batch:
                return
            start = notifications[-1].id + 1

    def get(self, event_id: str) -> Recorded | None:
        """The stored event of a producer ``event_id``, if any."""
        if self.sealer is not None:
            self.sealer.refresh()
        found = self.recorder.select_streams([stream_id(event_id)])
        return self.to_event(found[stream_id(event_id)]) if found else None

    def position(self) -> int:
        """The position of the last stored event (0 when empty)."""
        return self.recorder.max_notification_id() or 0

    def recorded_at(self, start: int) -> tuple[int, datetime] | None:
        """The first stored event at or after position ``start``: its position and when
        the engine recorded it (the store's own ``recorded_at``); None when there is no
        such event, or its ``recorded_at`` cannot be read."""
        notifications = self.recorder.select_notifications(start, 1)
        if not notifications:
            return None
        text = self.mapper.recorded_at(notifications[0])
        if text is None:
            return None
        when = datetime.fromisoformat(text)
        return notifications[0].id, (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)

    def quarantine(self, *, open_only: bool = True, after_id: int = 0, limit: int = 1000) -> list[QuarantineEntry]:
        return self.recorder.select_quarantine(open_only=open_only, after_id=after_id, limit=limit)


def _conflict(submission: Submission, known: dict[str, Any]) -> Rejection:
    new = orjson.loads(submission.content)
    differs = sorted(k for k in set(new) | set(known) if new.get(k) != known.get(k))
    return Rejection(
        source=submission.source,
        locator=submission.locator,
        raw=submission.raw,
        code="conflict",
        reason=(
            f"event_id {submission.event_id!r} was already accepted with different "
            f"content (differs in: {', '.join(differs)}); events are facts: send a "
            "correction as a new touch with its own event_id"
        ),
        event_id=submission.event_id,
    )
