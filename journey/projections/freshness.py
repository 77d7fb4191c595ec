"""How fresh the published snapshot is, and waiting until it holds a position.

Lag is measured against the event store, in the store's own terms:

- **in events**: the store's head position minus the published position;
- **in seconds**: how much of the store's recorded history the snapshot is missing,
  by the store's clock: the ``recorded_at`` of the head event minus the ``recorded_at``
  of the first event after the published position (0 when caught up). It is not
  "now minus anything": it does not grow while nothing is written, and it needs no
  clock but the store's. The events of one ingest batch share one ``recorded_at``, so
  a single unpublished batch is 0 seconds behind while its events count in the lag in
  events; ``unpublished_since`` says when the oldest unpublished event was recorded,
  for whoever wants its age on a wall clock.

"Published at" is when the snapshot's file was written (the modification time of the
slot the link points to, or of its write-ahead log when later: a publish finishes
writing them before it moves the link).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from journey.errors import ProjectionError
from journey.projections.publish import projection_status
from journey.store.event_store import EventStore

__all__ = ["Lag", "lag", "published_at", "published_position", "wait_for_position"]


@dataclass(frozen=True)
class Lag:
    """How far a published position is behind the store's head."""

    events: int
    """Head position minus the published position."""
    seconds: float
    """Recorded time the snapshot is missing (see the module's docstring); 0 when caught up."""
    unpublished_since: datetime | None
    """``recorded_at`` of the first stored event after the published position; None when caught up."""


def lag(store: EventStore, published: int, head: int) -> Lag:
    """The lag of ``published`` behind the store's ``head`` (both positions; read the
    published one first, so the head is never older than it)."""
    if head <= published:
        return Lag(head - published, 0.0, None)
    first = store.recorded_at(published + 1)
    last = store.recorded_at(head)
    if first is None or last is None:
        return Lag(head - published, 0.0, None)
    return Lag(head - published, max(0.0, (last[1] - first[1]).total_seconds()), first[1])


def published_at(snapshot: Path) -> datetime | None:
    """When the snapshot file was published (the later modification time, UTC, of the
    slot the link points to and of its write-ahead log, where an update of the slot
    leaves its changes); None when nothing is published."""
    try:
        written = snapshot.stat().st_mtime
    except FileNotFoundError:
        return None
    try:
        written = max(written, snapshot.with_name(os.readlink(snapshot) + ".wal").stat().st_mtime)
    except OSError:
        pass
    return datetime.fromtimestamp(written, timezone.utc)


def published_position(snapshot: Path) -> int | None:
    """The position the published snapshot holds; None when nothing is published."""
    status = projection_status(snapshot)
    return None if status is None else int(status["position"])


def wait_for_position(snapshot: Path, position: int, timeout: float, poll: float = 0.1) -> int:
    """Wait until the published snapshot holds ``position`` (its ``projection_status``
    position is at least that), polling every ``poll`` seconds; returns the published
    position. Raises ``ProjectionError`` after ``timeout`` seconds, saying how far it got."""
    if poll <= 0 or timeout < 0:
        raise ValueError(f"poll must be positive and timeout not negative (poll={poll}, timeout={timeout})")
    deadline = time.monotonic() + timeout
    while True:
        reached = published_position(snapshot)
        if reached is not None and reached >= position:
            return reached
        left = deadline - time.monotonic()
        if left <= 0:
            raise ProjectionError(_timed_out(snapshot, position, timeout, reached))
        time.sleep(min(poll, left))


def _timed_out(snapshot: Path, position: int, timeout: float, reached: int | None) -> str:
    where = (f"nothing was published at {snapshot}" if reached is None
             else f"the snapshot at {snapshot} holds position {reached}")
    return (f"position {position} was not published within {timeout:g} s: {where}. Is a follower "
            "running (`journey project --follow`)? Run `journey project` to catch up once, or wait "
            "longer with --timeout; `journey status` shows the lag")
