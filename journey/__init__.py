"""journey: an event-sourced customer-journey engine for clinics.

The public surface: the touch contract (``parse_touch``, ``Touch``), the settings, the
composition root, and the error hierarchy. Modules not re-exported here are internal.
Importing ``journey`` is light: each name loads its module on first use, so a producer
that imports ``journey.producer`` loads only what producing needs.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = [
    "ConfigurationError",
    "EventStoreError",
    "InputError",
    "InvalidTouchError",
    "JourneyError",
    "ProducerError",
    "ProjectionError",
    "Settings",
    "Touch",
    "TouchBase",
    "open_event_store",
    "open_ingestor",
    "parse_touch",
]

_HOMES = {
    "open_event_store": "journey.bootstrap",
    "open_ingestor": "journey.bootstrap",
    "Settings": "journey.config",
    "Touch": "journey.domain.touch",
    "TouchBase": "journey.domain.touch",
    "parse_touch": "journey.domain.touch",
    **{name: "journey.errors" for name in __all__ if name.endswith("Error")},
}

if TYPE_CHECKING:
    from journey.bootstrap import open_event_store, open_ingestor
    from journey.config import Settings
    from journey.domain.touch import Touch, TouchBase, parse_touch
    from journey.errors import (
        ConfigurationError,
        EventStoreError,
        InputError,
        InvalidTouchError,
        JourneyError,
        ProducerError,
        ProjectionError,
    )


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'journey' has no attribute {name!r}")
    value = getattr(import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
