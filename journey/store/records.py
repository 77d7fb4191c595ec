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

    def to_dict(self) -> dict[str, object]:
        """The entry as ``journey quarantine --json`` prints it (the raw record as text)."""
        r = self.rejection
        return {
            "id": self.id, "quarantined_at": self.quarantined_at.isoformat(),
            "source": r.source, "locator": r.locator, "event_id": r.event_id, "code": r.code,
            "reason": r.reason, "raw": r.raw.decode("utf-8", "replace"),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "resolution": self.resolution,
        }
