"""The producer SDK: send touches to Kafka, validated before they leave the caller.

    from journey.producer import TouchProducer
    with TouchProducer("kafka:9092") as producer:
        producer.send({"event_id": "tel-1", "type": "call", ...})   # InvalidTouchError if bad

The topic contract (docs/producers.md): the value is the touch as UTF-8 JSON (wire
format v1, canonical form); the key is the customer's first identifier
(customer_id, else phone, else email, else anonymous_id; ad spend: its campaign), so
one customer's touches stay in order in one partition; headers carry the wire version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata

from journey.domain.touch import WIRE_VERSION, TouchBase, parse_touch
from journey.errors import ProducerError

__all__ = ["HEADERS", "ProducerError", "TouchProducer", "message_key"]

HEADERS = [("content-type", b"application/json"), ("journey-wire-version", str(WIRE_VERSION).encode())]


def message_key(touch: TouchBase) -> bytes:
    """The partition key: one customer's touches go to one partition, in order."""
    if touch.customer is not None:
        kind, value = touch.customer.identifiers()[0]
        return f"{kind}:{value}".encode()
    campaign = getattr(touch.properties, "campaign", None)  # type: ignore[attr-defined]
    return f"ad_spend:{touch.channel or ''}:{campaign or ''}".encode()


class TouchProducer:
    """Validates each touch against the contract, then sends it with the idempotent producer."""

    def __init__(self, bootstrap: str, topic: str = "touches", *, default_region: str | None = None,
                 **kafka_options: Any) -> None:
        self.topic = topic
        self.default_region = default_region
        options = {"acks": "all", "enable_idempotence": True, "linger_ms": 20, "retries": 5,
                   **kafka_options}
        try:
            self._producer = KafkaProducer(bootstrap_servers=bootstrap, **options)
        except KafkaError as error:
            raise ProducerError(f"cannot reach Kafka at {bootstrap}: {error}; check JOURNEY_KAFKA_BOOTSTRAP") from None

    def send(self, touch: TouchBase | Mapping[str, Any] | bytes | str) -> FutureRecordMetadata:
        """Validate and send one touch. A bad touch raises ``InvalidTouchError`` here
        and never reaches the topic."""
        if not isinstance(touch, TouchBase):
            raw = touch if isinstance(touch, bytes | str) else orjson.dumps(dict(touch))
            touch = parse_touch(raw, default_region=self.default_region)
        return self._producer.send(self.topic, value=touch.content_json(), key=message_key(touch),
                                   headers=list(HEADERS))

    def flush(self, timeout: float | None = None) -> None:
        try:
            self._producer.flush(timeout)
        except KafkaError as error:
            raise ProducerError(f"Kafka did not confirm every touch: {error}") from None

    def close(self) -> None:
        """Flush what is buffered, then close."""
        try:
            self.flush()
        finally:
            self._producer.close()

    def __enter__(self) -> TouchProducer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
