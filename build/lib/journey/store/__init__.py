"""The event store and its adapters (in-memory, SQLite, PostgreSQL)."""

from journey.store.event_store import AppendOutcome, EventStore, Submission
from journey.store.recorder import InMemoryJourneyRecorder, JourneyRecorder
from journey.store.records import QuarantineEntry, Rejection

__all__ = [
    "AppendOutcome",
    "EventStore",
    "InMemoryJourneyRecorder",
    "JourneyRecorder",
    "QuarantineEntry",
    "Rejection",
    "Submission",
]
