"""What ``journey demo`` shows after ingesting and projecting: the store's events by
type with identity resolved, and the projection's headline numbers."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from journey.projections.identity import identity_map
from journey.projections.publish import query
from journey.projections.reading import STAGE_FUNNEL_SUMMARY_SQL
from journey.store.event_store import EventStore

__all__ = ["ProjectionOverview", "StoreOverview", "projection_overview", "store_overview"]


@dataclass(frozen=True)
class StoreOverview:
    events_by_type: list[tuple[str, int]]
    """Touch type (a custom touch's activity), most common first."""
    identifiers: int
    customers: int
    ambiguous_identifiers: int

    @property
    def events(self) -> int:
        return sum(n for _, n in self.events_by_type)


@dataclass(frozen=True)
class ProjectionOverview:
    patients: int
    """Identified customers."""
    visited: int
    revenue: float
    stage_funnel: list[tuple[object, ...]]
    """(stage, entered, reached_next, in_progress, lost) per stage: the rows the report draws."""


def store_overview(store: EventStore) -> StoreOverview:
    types: Counter[str] = Counter()
    for _position, event in store.read():
        types[event.touch.get("activity") or event.touch["type"]] += 1
    identities = identity_map(store)
    return StoreOverview(types.most_common(), len(identities.canonical_of), len(identities.customers),
                         len(identities.ambiguities))


def projection_overview(snapshot: Path) -> ProjectionOverview:
    _, [(patients, visited, revenue)] = query(
        snapshot,
        "SELECT count(*) FILTER (WHERE identified), count(*) FILTER (WHERE visits > 0), "
        "coalesce(sum(revenue), 0) FROM customers")
    _, funnel = query(snapshot, STAGE_FUNNEL_SUMMARY_SQL)
    return ProjectionOverview(patients, visited, float(revenue), [tuple(row) for row in funnel])
