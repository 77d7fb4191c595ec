"""SQL shared by the relational adapters (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from itertools import repeat
from typing import Any

from eventsourcing.persistence import StoredEvent

from journey.store.batch import StoredRows
from journey.store.records import QuarantineEntry, Rejection

QUARANTINE_COLUMNS = (
    "id, quarantined_at, source, locator, event_id, code, reason, raw, resolved_at, resolution"
)


def rows_of(events: Sequence[StoredEvent]) -> Iterable[tuple[str, int, str, bytes]]:
    """``(originator_id, originator_version, topic, state)`` rows of stored events,
    straight from the columns of ``StoredRows``."""
    if isinstance(events, StoredRows):
        return zip(events.ids, repeat(1), events.topics, events.states)
    return [(s.originator_id, s.originator_version, s.topic, s.state) for s in events]


def columns_of(events: Sequence[StoredEvent]) -> tuple[list[str], list[int], list[str], list[bytes]]:
    """The four columns of stored events, as the PostgreSQL adapter sends them."""
    if isinstance(events, StoredRows):
        return events.ids, [1] * len(events), events.topics, events.states
    return ([s.originator_id for s in events], [s.originator_version for s in events],
            [s.topic for s in events], [s.state for s in events])


def rejection_row(rejection: Rejection, now: datetime) -> tuple[Any, ...]:
    return (
        now,
        rejection.source,
        rejection.locator,
        rejection.event_id,
        rejection.code,
        rejection.reason,
        rejection.raw,
    )


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value).astimezone(timezone.utc)


def entry_from_row(row: Any) -> QuarantineEntry:
    return QuarantineEntry(
        id=row["id"],
        quarantined_at=_when(row["quarantined_at"]),  # type: ignore[arg-type]
        rejection=Rejection(
            source=row["source"],
            locator=row["locator"],
            raw=bytes(row["raw"]),
            code=row["code"],
            reason=row["reason"],
            event_id=row["event_id"],
        ),
        resolved_at=_when(row["resolved_at"]),
        resolution=row["resolution"],
    )
