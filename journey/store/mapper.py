"""Mapping stored events to and from the database: the eventsourcing Mapper with a
fast JSON transcoder (orjson) and a write path that splices the touch's JSON bytes
(already serialised by the validator) into the stored state without a dict round-trip."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.utils import get_topic

from journey.domain.events import Recorded, recorded_class, stream_id

if TYPE_CHECKING:
    from journey.crypto.sealer import Sealer

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

    def __init__(self, sealer: Sealer | None = None) -> None:
        super().__init__(transcoder=OrjsonTranscoder())
        self._topics: dict[type, str] = {}
        self.sealer = sealer
        """Seals personal fields with per-customer keys (None: stored in the clear)."""

    def stored(self, cls: type[Recorded], stream: str, touch_json: bytes, recorded_at: str) -> StoredEvent:
        """The stored event of a touch given as canonical JSON bytes."""
        topic = self._topics.get(cls) or self._topics.setdefault(cls, get_topic(cls))
        tail = b'"}' if cls.class_version == 1 else f'","class_version":{cls.class_version}}}'.encode()
        state = b'{"touch":' + touch_json + b',"recorded_at":"' + recorded_at.encode() + tail
        return StoredEvent(stream, 1, topic, self._seal(state))

    def stored_touches(
        self, touches: Iterable[tuple[str, str, bytes, bytes | None]], recorded_at: str
    ) -> list[StoredEvent]:
        """Stored events of ``(type, event_id, touch JSON, sealed JSON or None)``, all
        recorded at once. A touch an ingest worker sealed already is stored as sealed;
        the others are sealed here (when this store seals).

        The batch form of ``stored``: the ingest hot path, so lookups are hoisted."""
        touches = list(touches)
        unsealed = [i for i, t in enumerate(touches) if t[3] is None]
        if self.sealer is not None and unsealed:
            sealed = self.sealer.seal_all([touches[i][2] for i in unsealed])
            for i, text in zip(unsealed, sealed):
                touches[i] = (*touches[i][:3], text)
        at = recorded_at.encode()
        heads: dict[str, tuple[str, bytes]] = {}
        out = []
        for type_, event_id, plain, sealed_json in touches:
            touch_json = plain if sealed_json is None else sealed_json
            head = heads.get(type_)
            if head is None:
                cls = recorded_class(type_)
                tail = b'"}' if cls.class_version == 1 else f'","class_version":{cls.class_version}}}'.encode()
                head = heads[type_] = (get_topic(cls), b',"recorded_at":"' + at + tail)
            state = b'{"touch":' + touch_json + head[1]
            out.append(StoredEvent(stream_id(event_id), 1, head[0], self._seal(state) if self._sealing else state))
        return out

    @property
    def _sealing(self) -> bool:
        return bool(self.compressor or self.cipher)

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        if not isinstance(domain_event, Recorded):
            return super().to_stored_event(domain_event)
        touch = orjson.dumps(domain_event.touch, default=_default)
        if self.sealer is not None:
            touch = self.sealer.seal_all([touch])[0]
        return self.stored(type(domain_event), domain_event.originator_id, touch, domain_event.recorded_at)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        """The library's decoding (upcasting included), then the sealed fields opened."""
        event = super().to_domain_event(stored_event)
        if self.sealer is not None and isinstance(event, Recorded):
            touch = self.sealer.unseal(event.touch)
            if touch is not event.touch:
                event = replace(event, touch=touch)
        return event

    def recorded_at(self, stored_event: StoredEvent) -> str | None:
        """When the engine stored this event (its ``recorded_at``, RFC 3339), read from
        the stored state without decoding the touch or opening sealed fields; None when
        the state has no readable ``recorded_at``."""
        state = stored_event.state
        try:
            if self.cipher:
                state = self.cipher.decrypt(state)
            if self.compressor:
                state = self.compressor.decompress(state)
            value = self.transcoder.decode(state).get("recorded_at")
        except Exception:  # noqa: BLE001 - a poison event: the projector reports those
            return None
        return value if isinstance(value, str) else None

    def _seal(self, state: bytes) -> bytes:
        if self.compressor:
            state = self.compressor.compress(state)
        if self.cipher:
            state = self.cipher.encrypt(state)
        return state
