"""The composition root: wires adapters from ``Settings``. Nothing else picks adapters."""

from __future__ import annotations

from eventsourcing.persistence import OperationalError, InterfaceError

from journey.config import Settings
from journey.errors import EventStoreError
from journey.ingest.pipeline import Ingestor
from journey.store.event_store import EventStore
from journey.store.recorder import JourneyRecorder

__all__ = ["open_event_store", "open_ingestor", "open_recorder"]


def open_recorder(settings: Settings) -> JourneyRecorder:
    """Open the configured event store database, creating its tables if needed."""
    if settings.is_postgres:
        from journey.store.postgres import open_postgres, redact

        try:
            return open_postgres(settings.event_store_url)
        except (OperationalError, InterfaceError) as error:
            raise EventStoreError(
                f"cannot reach the PostgreSQL event store at {redact(settings.event_store_url)}: "
                f"{str(error).splitlines()[0] if str(error) else type(error).__name__}; check that "
                "the server runs and JOURNEY_EVENT_STORE is right"
            ) from None
    from journey.store.sqlite import open_sqlite

    path = settings.sqlite_path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open_sqlite(str(path))
    except (OSError, OperationalError, InterfaceError) as error:
        raise EventStoreError(
            f"cannot open the SQLite event store at {path}: {error}; check the path "
            "and its permissions (JOURNEY_HOME or JOURNEY_EVENT_STORE)"
        ) from None


def open_event_store(settings: Settings) -> EventStore:
    return EventStore(open_recorder(settings))


def open_ingestor(settings: Settings, store: EventStore | None = None) -> Ingestor:
    return Ingestor(
        store or open_event_store(settings),
        default_region=settings.default_region,
        max_record_bytes=settings.max_record_bytes,
        batch_size=settings.batch_size,
        workers=settings.ingest_workers,
    )
