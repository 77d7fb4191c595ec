"""Mapping stored events to and from the database: the eventsourcing Mapper with a
fast JSON transcoder (orjson) and a lean write path for our one-field events."""

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
    """Writes ``Recorded`` events without the generic ``vars()`` walk; reads (with
    upcasting, cipher and compressor) exactly as the library's Mapper does."""

    def __init__(self) -> None:
        super().__init__(transcoder=OrjsonTranscoder())
        self._topics: dict[type, str] = {}

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        if not isinstance(domain_event, Recorded):
            return super().to_stored_event(domain_event)
        cls = type(domain_event)
        topic = self._topics.get(cls) or self._topics.setdefault(cls, get_topic(cls))
        state: dict[str, Any] = {"touch": domain_event.touch}
        if cls.class_version > 1:
            state["class_version"] = cls.class_version
        stored = self.transcoder.encode(state)
        if self.compressor:
            stored = self.compressor.compress(stored)
        if self.cipher:
            stored = self.cipher.encrypt(stored)
        return StoredEvent(domain_event.originator_id, domain_event.originator_version, topic, stored)
