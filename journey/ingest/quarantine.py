"""Getting quarantined records out to be fixed: ``journey quarantine export``."""

from __future__ import annotations

from pathlib import Path

from journey.store.event_store import EventStore

__all__ = ["export_quarantine"]

_PAGE = 5000


def export_quarantine(store: EventStore, out: Path) -> int:
    """Write the open entries' raw records to ``out``, one a line (JSON Lines), for
    fixing and ingesting again; returns how many. A fixed record resolves its entry."""
    count, after = 0, 0
    with open(out, "wb") as file:
        while entries := store.quarantine(after_id=after, limit=_PAGE):
            for entry in entries:
                file.write(entry.rejection.raw.replace(b"\n", b" ") + b"\n")
                count += 1
            after = entries[-1].id
    return count
