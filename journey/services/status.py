"""``journey status``: where the event store is, what it holds, how far the
projection is behind it, and (when Kafka is configured) the consumer lag."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from journey.projections.freshness import lag, published_at
from journey.projections.publish import projection_status
from journey.store.event_store import EventStore

__all__ = ["system_status"]


def system_status(store: EventStore, location: str, analytics: Path,
                  kafka: tuple[str, str] | None = None) -> dict[str, Any]:
    """The facts, in the order they are printed. ``kafka`` is (bootstrap, topic), or
    None when Kafka is not configured; an unreachable broker is reported, not raised.

    ``position`` is the store's head; ``projection_lag`` is how many events the published
    snapshot is behind it and ``projection_lag_seconds`` how much recorded time (by the
    store's ``recorded_at``, never the wall clock; see ``journey.projections.freshness``);
    ``projection_published_at`` is when the snapshot file was written. Nothing published
    counts as position 0: the whole store is the lag."""
    published = projection_status(analytics)  # before the head: the head is never older
    position = store.position()
    behind = lag(store, published["position"] if published else 0, position)
    facts: dict[str, Any] = {
        "event_store": location,
        "position": position,
        "quarantine_open": store.recorder.count_quarantine(),
        "quarantine_total": store.recorder.count_quarantine(open_only=False),
        "analytics": str(analytics),
        "projection_position": None,
        "projection_updated_at": None,
        "projection_published_at": _text(published_at(analytics)) if published else None,
        "projection_lag": behind.events,
        "projection_lag_seconds": round(behind.seconds, 3),
        "unpublished_since": _text(behind.unpublished_since),
        "dead_letters": None,
    }
    if published is not None:
        facts.update(projection_position=published["position"],
                     projection_updated_at=str(published["updated_at"]),
                     dead_letters=published["dead_letters"])
    if kafka is not None:
        facts.update(_kafka_lag(store, *kafka))
    return facts


def _text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _kafka_lag(store: EventStore, bootstrap: str, topic: str) -> dict[str, Any]:
    from journey.ingest.kafka import consumer_lag

    try:
        lag = consumer_lag(store, bootstrap, topic)
    except Exception as error:  # noqa: BLE001 - status reports, it does not fail
        return {"consumer_lag": f"unknown: Kafka at {bootstrap} did not answer ({error})"}
    return {"consumer_lag": sum(lag.values()), "consumer_lag_by_partition": lag}
