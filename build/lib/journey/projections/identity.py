"""Identity over the event store: every stored event's identifiers, resolved."""

from __future__ import annotations

from journey.domain.events import IdentityUnlinked
from journey.domain.identity import IdentityMap, IdentityResolver
from journey.domain.values import Customer
from journey.store.event_store import EventStore

__all__ = ["identity_map"]


def identity_map(store: EventStore, *, upto: int | None = None) -> IdentityMap:
    """Resolve identities from every event up to position ``upto`` (all by default)."""
    resolver = IdentityResolver()
    for _position, event in store.read(stop=upto):
        customer = event.touch.get("customer")
        if not customer:
            continue
        identifiers = Customer.model_construct(**customer).identifiers()
        if isinstance(event, IdentityUnlinked):
            resolver.unlink(identifiers)
        else:
            resolver.observe(identifiers)
    return resolver.resolve()
