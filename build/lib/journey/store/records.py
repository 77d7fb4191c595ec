"""Records the event store keeps beside the events: the quarantine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["QuarantineEntry", "Rejection"]


@dataclass(frozen=True)
class Rejection:
    """A record that could not be accepted, kept whole with the reason why."""

    source: str
    locator: str
    raw: bytes
    code: str
    reason: str
    event_id: str | None = None


@dataclass(frozen=True)
class QuarantineEntry:
    """A stored rejection, as ``journey quarantine`` lists it."""

    id: int
    quarantined_at: datetime
    rejection: Rejection
    resolved_at: datetime | None = None
    resolution: str | None = None
