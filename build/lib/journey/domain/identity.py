"""Identity resolution: many identifiers, one canonical customer, decided afterwards.

A patient arrives as an ad click (``anonymous_id``), calls (``phone``), then books
(``customer_id`` + ``phone``). Every touch that carries several identifiers links
them; ``identity_link`` events link explicitly; ``identity_unlink`` events undo every
earlier link between the identifiers they name (a wrong match). Observations are
taken in event-store order, so an unlink undoes what was known before it.

Resolution runs over the whole link graph (networkx connected components), so it is
retroactive: the ad click stored before the booking belongs to the patient.

Rules:
- a customer with a ``customer_id`` is that ``customer_id``;
- two different ``customer_id``s are never merged: an identifier nearest to exactly
  one of them belongs to it; one equally near to several (a parent's phone used to
  book for a child) is *ambiguous*: its touches stay apart under an ``ambiguous:``
  id and the ambiguity is listed, never guessed;
- a group without any ``customer_id`` is named after its first-seen identifier.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import networkx as nx

__all__ = ["Ambiguity", "Identifier", "IdentityMap", "IdentityResolver", "resolve_identities"]

Identifier = tuple[str, str]
"""``(kind, value)``: kind is customer_id, phone, email or anonymous_id."""

_PRIORITY = {"customer_id": 0, "phone": 1, "email": 2, "anonymous_id": 3}


def label(identifier: Identifier) -> str:
    """The readable name of an identifier: ``phone:+79161234567``."""
    return f"{identifier[0]}:{identifier[1]}"


@dataclass(frozen=True)
class Ambiguity:
    """An identifier linked equally closely to several customers."""

    identifier: Identifier
    candidates: tuple[str, ...]


@dataclass
class IdentityMap:
    """The result of resolution: identifier -> canonical customer id."""

    canonical_of: dict[Identifier, str] = field(default_factory=dict)
    ambiguities: list[Ambiguity] = field(default_factory=list)

    def resolve(self, identifiers: Sequence[Identifier]) -> str:
        """The canonical customer of a touch carrying these identifiers."""
        for identifier in identifiers:
            if identifier[0] == "customer_id":
                return identifier[1]
        names = {self.canonical_of.get(i, label(i)) for i in identifiers}
        customers = {n for n in names if not _is_provisional(n)}
        if len(customers) == 1:
            return customers.pop()
        if customers:
            return "ambiguous:" + "|".join(sorted(customers))
        best = min(identifiers, key=lambda i: _PRIORITY.get(i[0], 9))
        return self.canonical_of.get(best, label(best))

    @property
    def customers(self) -> set[str]:
        return set(self.canonical_of.values())


def _is_provisional(name: str) -> bool:
    return name.startswith(("ambiguous:", "phone:", "email:", "anonymous_id:"))


class IdentityResolver:
    """Collects link evidence in event-store order, then resolves it."""

    def __init__(self) -> None:
        self._graph = nx.Graph()
        self._seen: dict[Identifier, int] = {}

    def _note(self, identifiers: Iterable[Identifier]) -> None:
        for identifier in identifiers:
            if identifier not in self._seen:
                self._seen[identifier] = len(self._seen)
                self._graph.add_node(identifier)

    def observe(self, identifiers: Sequence[Identifier]) -> None:
        """A touch or an ``identity_link``: its identifiers belong together."""
        self._note(identifiers)
        self._graph.add_edges_from(combinations(identifiers, 2))

    def unlink(self, identifiers: Sequence[Identifier]) -> None:
        """An ``identity_unlink``: undo earlier links among these identifiers."""
        self._note(identifiers)
        for a, b in combinations(identifiers, 2):
            if self._graph.has_edge(a, b):
                self._graph.remove_edge(a, b)

    def add_nodes(self, identifiers: Iterable[Identifier]) -> None:
        """Identifiers in first-seen order (names a group without a customer_id)."""
        new = [i for i in dict.fromkeys(identifiers) if i not in self._seen]
        self._seen.update(zip(new, range(len(self._seen), len(self._seen) + len(new))))
        self._graph.add_nodes_from(new)

    def add_links(self, pairs: Iterable[tuple[Identifier, Identifier]]) -> None:
        """Links known to be in force (e.g. computed in bulk by a projection)."""
        pairs = list(pairs)
        self.add_nodes(identifier for pair in pairs for identifier in pair)
        self._graph.add_edges_from(pairs)

    def resolve(self) -> IdentityMap:
        result = IdentityMap()
        for component in nx.connected_components(self._graph):
            customers = [i for i in component if i[0] == "customer_id"]
            if len(customers) == 1:
                name = customers[0][1]
                result.canonical_of.update(dict.fromkeys(component, name))
            elif not customers:
                first = min(component, key=self._seen.__getitem__)
                result.canonical_of.update(dict.fromkeys(component, label(first)))
            else:
                self._split(component, customers, result)
        return result

    def _split(
        self, component: set[Identifier], customers: list[Identifier], result: IdentityMap
    ) -> None:
        """Give each identifier to its nearest customer_id; ties are ambiguous."""
        sub = self._graph.subgraph(component)
        distance: dict[Identifier, dict[str, int]] = {}
        for customer in customers:
            for node, hops in nx.single_source_shortest_path_length(sub, customer).items():
                distance.setdefault(node, {})[customer[1]] = hops
        for node in component:
            if node[0] == "customer_id":
                result.canonical_of[node] = node[1]
                continue
            reach = distance.get(node, {})
            nearest = min(reach.values())
            owners = tuple(sorted(c for c, hops in reach.items() if hops == nearest))
            if len(owners) == 1:
                result.canonical_of[node] = owners[0]
            else:
                result.canonical_of[node] = "ambiguous:" + label(node)
                result.ambiguities.append(Ambiguity(node, owners))
        result.ambiguities.sort(key=lambda a: label(a.identifier))


def resolve_identities(
    observations: Iterable[tuple[str, Sequence[Identifier]]],
) -> IdentityMap:
    """Resolve ``(kind, identifiers)`` observations given in event-store order.

    ``kind`` is ``"unlink"`` for an identity_unlink, anything else links.
    """
    resolver = IdentityResolver()
    for kind, identifiers in observations:
        if kind == "unlink":
            resolver.unlink(identifiers)
        else:
            resolver.observe(identifiers)
    return resolver.resolve()
