"""Identity over the event store: every stored event's identifiers, resolved."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from journey.domain.events import IdentityUnlinked
from journey.domain.identity import IdentityMap, IdentityResolver
from journey.domain.values import Customer
from journey.store.event_store import EventStore

__all__ = ["identity_map", "identity_summary"]


def identity_map(store: EventStore, *, upto: int | None = None,
                 progress: Callable[[int], None] | None = None) -> IdentityMap:
    """Resolve identities from every event up to position ``upto`` (all by default)."""
    resolver = IdentityResolver()
    for position, event in store.read(stop=upto):
        if progress and position % 10_000 == 0:
            progress(10_000)
        customer = event.touch.get("customer")
        if not customer:
            continue
        identifiers = Customer.model_construct(**customer).identifiers()
        if isinstance(event, IdentityUnlinked):
            resolver.unlink(identifiers)
        else:
            resolver.observe(identifiers)
    return resolver.resolve()


def identity_summary(identities: IdentityMap, *, ambiguous: bool = False) -> dict[str, Any]:
    """What ``journey identities`` prints: counts, and with ``ambiguous`` the identifiers
    shared by several customers (``kind:value`` and the candidates)."""
    return {
        "identifiers": len(identities.canonical_of),
        "customers": len(identities.customers),
        "ambiguous_identifiers": len(identities.ambiguities),
        "ambiguities": [
            {"identifier": f"{a.identifier[0]}:{a.identifier[1]}", "candidates": list(a.candidates)}
            for a in identities.ambiguities
        ] if ambiguous else [],
    }
