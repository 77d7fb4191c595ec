"""``journey status``: where the event store is, what it holds, how far the
projection is behind it, and (when Kafka is configured) the consumer lag."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from journey.projections.publish import projection_status
from journey.store.event_store import EventStore

__all__ = ["system_status"]


def system_status(store: EventStore, location: str, analytics: Path,
                  kafka: tuple[str, str] | None = None) -> dict[str, Any]:
    """The facts, in the order they are printed. ``kafka`` is (bootstrap, topic), or
    None when Kafka is not configured; an unreachable broker is reported, not raised."""
    position = store.position()
    facts: dict[str, Any] = {
        "event_store": location,
        "position": position,
        "quarantine_open": store.recorder.count_quarantine(),
        "quarantine_total": store.recorder.count_quarantine(open_only=False),
        "analytics": str(analytics),
        "projection_position": None,
        "projection_updated_at": None,
        "dead_letters": None,
    }
    published = projection_status(analytics)
    if published is not None:
        facts.update(projection_position=published["position"],
                     projection_updated_at=str(published["updated_at"]),
                     projection_lag=position - published["position"],
                     dead_letters=published["dead_letters"])
    if kafka is not None:
        facts.update(_kafka_lag(store, *kafka))
    return facts


def _kafka_lag(store: EventStore, bootstrap: str, topic: str) -> dict[str, Any]:
    from journey.ingest.kafka import consumer_lag

    try:
        lag = consumer_lag(store, bootstrap, topic)
    except Exception as error:  # noqa: BLE001 - status reports, it does not fail
        return {"consumer_lag": f"unknown: Kafka at {bootstrap} did not answer ({error})"}
    return {"consumer_lag": sum(lag.values()), "consumer_lag_by_partition": lag}
