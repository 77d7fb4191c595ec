"""Mapping stored events to and from the database: the eventsourcing Mapper with a
fast JSON transcoder (orjson) and a write path that splices the touch's JSON bytes
(already serialised by the validator) into the stored state without a dict round-trip."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.utils import get_topic

from journey.domain.events import Recorded

__all__ = ["JourneyMapper", "OrjsonTranscoder"]


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot store a {type(value).__name__} in an event")


class OrjsonTranscoder(Transcoder):
    """Event state is plain JSON: the touch's canonical form is JSON already."""

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj, default=_default)

    def decode(self, data: bytes) -> Any:
        return orjson.loads(data)


class JourneyMapper(Mapper[str]):
    """Reads (with upcasting, cipher and compressor) exactly as the library's Mapper;
    writes ``Recorded`` events from the touch's JSON bytes.

    Stored state: ``{"touch": {...}, "recorded_at": "..."[, "class_version": N]}``.
    """

    def __init__(self) -> None:
        super().__init__(transcoder=OrjsonTranscoder())
        self._topics: dict[type, str] = {}

    def stored(self, cls: type[Recorded], stream: str, touch_json: bytes, recorded_at: str) -> StoredEvent:
        """The stored event of a touch given as canonical JSON bytes."""
        topic = self._topics.get(cls) or self._topics.setdefault(cls, get_topic(cls))
        tail = b'"}' if cls.class_version == 1 else f'","class_version":{cls.class_version}}}'.encode()
        state = b'{"touch":' + touch_json + b',"recorded_at":"' + recorded_at.encode() + tail
        return StoredEvent(stream, 1, topic, self._seal(state))

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        if not isinstance(domain_event, Recorded):
            return super().to_stored_event(domain_event)
        return self.stored(
            type(domain_event), domain_event.originator_id,
            orjson.dumps(domain_event.touch, default=_default), domain_event.recorded_at,
        )

    def _seal(self, state: bytes) -> bytes:
        if self.compressor:
            state = self.compressor.compress(state)
        if self.cipher:
            state = self.cipher.encrypt(state)
        return state
