"""Mapping stored events to and from the database: the eventsourcing Mapper with a
fast JSON transcoder (orjson) and a write path that splices the touch's JSON bytes
(already serialised by the validator) into the stored state without a dict round-trip."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.utils import get_topic

from journey.domain.events import Recorded, recorded_class, stream_id
from journey.store.batch import StoredRows, Submission, Touches

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
        topic, tail = self._head(cls, recorded_at)
        state = b'{"touch":' + touch_json + tail
        return StoredEvent(stream, 1, topic, self._seal(state))

    def stored_rows(self, touches: Touches, fresh: Sequence[int] | None, recorded_at: str) -> StoredRows:
        """The stored rows of the ``fresh`` touches of a batch (None: all of them), all
        recorded at once. Touches an ingest worker sealed are stored as sealed; the
        others are sealed here (when this store seals).

        The ingest hot path: columns in, columns out, no object per touch."""
        if touches.stored is not None:
            bodies = touches.stored.items()
        else:
            bodies = touches.content.items()
        event_ids, types = touches.event_ids, touches.types
        if fresh is not None:
            bodies = [bodies[i] for i in fresh]
            event_ids = [event_ids[i] for i in fresh]
            types = [types[i] for i in fresh]
        if touches.stored is None and self.sealer is not None and bodies:
            bodies = self.sealer.seal_all(bodies)
        heads = {type_: self._head(recorded_class(type_), recorded_at) for type_ in set(types)}
        topics = [heads[type_][0] for type_ in types]
        states = [b'{"touch":' + body + heads[type_][1] for body, type_ in zip(bodies, types)]
        if self._sealing:
            states = [self._seal(state) for state in states]
        return StoredRows(list(map(stream_id, event_ids)), topics, states)

    def stored_touches(
        self, touches: Iterable[tuple[str, str, bytes, bytes | None]], recorded_at: str
    ) -> list[StoredEvent]:
        """Stored events of ``(type, event_id, touch JSON, sealed JSON or None)``, all
        recorded at once: ``stored_rows`` for callers that hold touches one by one."""
        submissions = [Submission(event_id, type_, plain, "", "", b"", sealed)
                       for type_, event_id, plain, sealed in touches]
        return list(self.stored_rows(Touches.of(submissions), None, recorded_at))

    def _head(self, cls: type[Recorded], recorded_at: str) -> tuple[str, bytes]:
        """A stored event class's topic, and what follows the touch in its stored state."""
        topic = self._topics.get(cls) or self._topics.setdefault(cls, get_topic(cls))
        tail = b'"}' if cls.class_version == 1 else f'","class_version":{cls.class_version}}}'.encode()
        return topic, b',"recorded_at":"' + recorded_at.encode() + tail

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
