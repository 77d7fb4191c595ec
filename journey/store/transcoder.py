"""A fast JSON transcoder for the eventsourcing Mapper (orjson, UTF-8 bytes)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from eventsourcing.persistence import Transcoder

__all__ = ["OrjsonTranscoder"]


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
