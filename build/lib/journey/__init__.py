"""journey: an event-sourced customer-journey engine for clinics.

The public surface: the touch contract (``parse_touch``, ``Touch``), the settings, the
composition root, and the error hierarchy. Modules not re-exported here are internal.
"""

from journey.bootstrap import open_event_store, open_ingestor
from journey.config import Settings
from journey.domain.touch import Touch, TouchBase, parse_touch
from journey.errors import (
    ConfigurationError,
    EventStoreError,
    InputError,
    InvalidTouchError,
    JourneyError,
    SchemaMismatchError,
)

__all__ = [
    "ConfigurationError",
    "EventStoreError",
    "InputError",
    "InvalidTouchError",
    "JourneyError",
    "SchemaMismatchError",
    "Settings",
    "Touch",
    "TouchBase",
    "open_event_store",
    "open_ingestor",
    "parse_touch",
]
