"""The exception hierarchy of journey.

Every error says what went wrong and what to do next::

    JourneyError
    ├── ConfigurationError      a JOURNEY_* setting is missing or malformed
    ├── EventStoreError         the event store cannot be reached or used
    ├── InvalidTouchError       a record does not satisfy the touch contract (wire format v1)
    ├── InputError              a file or argument given on the command line cannot be used
    ├── ProducerError           Kafka did not accept a touch (unreachable, or refused it)
    └── ProjectionError         the DuckDB projection cannot be built or read
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "EventStoreError",
    "InputError",
    "InvalidTouchError",
    "JourneyError",
    "ProducerError",
    "ProjectionError",
]


class JourneyError(Exception):
    """Base class of every error journey raises on purpose."""


class ConfigurationError(JourneyError):
    """A JOURNEY_* setting is missing or malformed."""


class EventStoreError(JourneyError):
    """The event store cannot be reached or used."""


class InvalidTouchError(JourneyError):
    """A record does not satisfy the touch contract.

    ``reason`` is one line a person can act on; ``code`` is a stable machine name.
    """

    def __init__(self, reason: str, code: str = "invalid") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class InputError(JourneyError):
    """A file or argument given by the user cannot be used."""


class ProducerError(JourneyError):
    """Kafka did not accept a touch (the broker is unreachable, or refused it)."""


class ProjectionError(JourneyError):
    """The DuckDB projection cannot be built or read (a poison event, a lock, a
    missing or outdated file)."""
