"""SQL shared by the relational adapters (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from journey.store.records import QuarantineEntry, Rejection

QUARANTINE_COLUMNS = (
    "id, quarantined_at, source, locator, event_id, code, reason, raw, resolved_at, resolution"
)


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
