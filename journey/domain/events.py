"""The stored event classes: what the event store holds, versioned for upcasting.

Each accepted touch is a stream of one event whose id derives from the producer's
``event_id`` (see ``docs/design.md`` for why, measured). Events are facts: a
correction is a new event, never an edit. When the stored form changes, bump
``class_version`` and add ``upcast_vN_vN+1`` (the eventsourcing library's upcasting):
old events are converted as they are read, history is never rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from journey.domain.touch import TouchBase, touch_adapter

__all__ = [
    "CustomerErased",
    "IdentityLinked",
    "IdentityUnlinked",
    "Recorded",
    "TouchRecorded",
    "recorded_class",
    "stream_id",
]

def stream_id(event_id: str) -> str:
    """The stream (originator) id of the touch with this producer ``event_id``.

    It is the ``event_id`` itself: the store's primary key is the idempotency key.
    """
    return event_id


@dataclass(frozen=True)
class Recorded:
    """Base of stored events.

    ``touch`` is what the producer said, validated, in canonical JSON form;
    ``recorded_at`` (RFC 3339, UTC) is when the engine stored it.
    """

    originator_id: str
    originator_version: int
    touch: dict[str, Any]
    recorded_at: str

    class_version: ClassVar[int] = 2
    """v2: personal fields may be sealed (``enc1:...``, see journey.crypto.sealer);
    a v1 state is a v2 state with nothing sealed, so the upcast changes nothing."""

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """v1 stored every field in the clear: still a valid v2 state."""

    @property
    def erased(self) -> bool:
        """The customer was forgotten: the sealed personal fields are gone for good."""
        return bool(self.touch.get("erased"))

    @property
    def event_id(self) -> str:
        return str(self.touch["event_id"])

    def to_touch(self) -> TouchBase:
        """The touch as a validated model (trusted: it passed the edge once)."""
        return touch_adapter.validate_json(
            orjson.dumps({**self.touch, "recorded_at": self.recorded_at}), context={"stored": True}
        )


@dataclass(frozen=True)
class TouchRecorded(Recorded):
    """A patient touchpoint (built-in type or custom activity) or a clinic cost."""


@dataclass(frozen=True)
class IdentityLinked(Recorded):
    """The identifiers in ``touch['customer']`` belong to one person."""


@dataclass(frozen=True)
class IdentityUnlinked(Recorded):
    """Earlier links between the identifiers in ``touch['customer']`` were wrong."""


@dataclass(frozen=True)
class CustomerErased(Recorded):
    """A customer was forgotten: the data keys ``touch['properties']['key_ids']`` are
    destroyed, so every personal field sealed with them is unreadable from now on.
    Holds no personal data itself (key ids are random)."""


ERASURE = "erasure"
"""The internal touch type of ``CustomerErased`` (never accepted from producers)."""


def recorded_class(touch_type: str) -> type[Recorded]:
    """The stored event class for a touch of this wire type."""
    if touch_type == "identity_link":
        return IdentityLinked
    if touch_type == "identity_unlink":
        return IdentityUnlinked
    if touch_type == ERASURE:
        return CustomerErased
    return TouchRecorded
