"""Forgetting a customer: destroy the data keys of their identifiers and record it.

After ``forget``: stored events sealed with those keys no longer yield the personal
fields (the bytes stay, unreadable); a ``CustomerErased`` event tells projections to
drop the customer's identifiers and anonymise their rows at the next catch-up;
quarantined records naming the customer are blanked. Non-personal facts (a visit
happened, its time, doctor and amount) remain, attached to nobody.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import orjson

from journey.domain.events import ERASURE
from journey.domain.identity import Identifier
from journey.domain.values import IDENTIFIER_KINDS, Customer
from journey.errors import InputError
from journey.projections.identity import identity_map
from journey.store.event_store import EventStore, Submission

__all__ = ["Erasure", "forget", "parse_reference"]

_PSEUDONYM = re.compile(r"^[0-9a-f]{24}$")


@dataclass(frozen=True)
class Erasure:
    """What ``forget`` did (nothing personal: counts and kinds)."""

    erasure_id: str
    identifiers: dict[str, int]
    keys_destroyed: int
    shared_kept: dict[str, int] = field(default_factory=dict)
    quarantine_erased: int = 0
    position: int = 0


def parse_reference(reference: str, store: EventStore, default_region: str | None = None) -> Identifier:
    """``kind:value`` (``phone:+7916...``), a projection pseudonym (24 hex digits, as
    analysts see customers), or else a clinic ``customer_id``."""
    kind, sep, value = reference.partition(":")
    if sep and kind in IDENTIFIER_KINDS:
        try:
            customer = Customer.model_validate({kind: value}, context={"default_region": default_region})
        except ValueError as error:
            raise InputError(f"{reference!r} is not a valid {kind}: {error.errors()[0]['msg']}") from None  # type: ignore[attr-defined]
        return customer.identifiers()[0]
    if _PSEUDONYM.match(reference) and store.sealer is not None:
        found = store.sealer.keys.contact([reference])
        if reference in found:
            return found[reference]
        raise InputError(f"no identifier has the pseudonym {reference}: it was forgotten already, or "
                         "it names a group without a customer_id (pass phone:..., email:... instead)")
    return ("customer_id", reference)


def forget(
    store: EventStore,
    target: Identifier,
    *,
    note: str = "",
    progress: Callable[[int], None] | None = None,
) -> Erasure:
    """Forget the customer ``target`` belongs to. Raises ``InputError`` when the store
    does not know the identifier or holds no key for it (forgotten already)."""
    sealer = store.sealer
    if sealer is None:
        raise InputError("this event store does not seal personal data (no key store): nothing can be forgotten")
    identity = identity_map(store, progress=progress)
    if target not in identity.canonical_of:
        raise InputError(f"the event store has no customer with this {target[0]}; check the value "
                         "(`journey identities` lists what is known), or it was forgotten already")
    canonical = identity.resolve([target])
    mine = [i for i, owner in identity.canonical_of.items() if owner == canonical] or [target]
    shared = [a.identifier for a in identity.ambiguities if canonical in a.candidates]
    pseudonyms = {sealer.pseudonym(kind, value): (kind, value) for kind, value in mine}
    key_ids = sealer.keys.key_ids(pseudonyms)
    if not key_ids:
        raise InputError(f"no data keys are left for {target[0]} of this customer: it was forgotten already, "
                         "or its events were stored before encryption (see docs/privacy.md)")
    erasure_id = uuid.uuid4().hex
    outcome = store.append([_erasure_event(erasure_id, sorted(key_ids.values()), note)])
    destroyed = sealer.keys.destroy(list(key_ids))
    sealer.refresh()
    erased = _erase_quarantine(store, [pseudonyms[p] for p in key_ids], erasure_id)
    return Erasure(
        erasure_id=erasure_id,
        identifiers=_kinds(pseudonyms[p] for p in key_ids),
        keys_destroyed=len(destroyed),
        shared_kept=_kinds(shared),
        quarantine_erased=erased,
        position=outcome.positions[0] if outcome.positions else 0,
    )


def _erasure_event(erasure_id: str, key_ids: list[str], note: str) -> Submission:
    event_id = f"erasure:{erasure_id}"
    content = orjson.dumps({
        "event_id": event_id, "type": ERASURE, "occurred_at": datetime.now(timezone.utc).isoformat(),
        "properties": {"key_ids": key_ids, "note": note[:200]},
    })
    return Submission(event_id, ERASURE, content, "forget", "", content)


def _erase_quarantine(store: EventStore, identifiers: list[Identifier], erasure_id: str) -> int:
    """Blank quarantined records that mention one of the identifiers (phones also in
    other spellings: any record whose digits hold the number's last ten)."""
    needles = [value.lower().encode() for _, value in identifiers]
    digits = [re.sub(r"\D", "", value)[-10:].encode() for kind, value in identifiers if kind == "phone"]
    hits, after = [], 0
    while batch := store.recorder.select_quarantine(open_only=False, after_id=after, limit=1000):
        for entry in batch:
            raw = entry.rejection.raw.lower()
            if any(n in raw for n in needles) or any(d and d in re.sub(rb"\D", b"", raw) for d in digits):
                hits.append(entry.id)
        after = batch[-1].id
    return store.recorder.erase_quarantine(hits, f"erased by {erasure_id}") if hits else 0


def _kinds(identifiers: Iterable[Identifier]) -> dict[str, int]:
    return dict(Counter(kind for kind, _value in identifiers))

