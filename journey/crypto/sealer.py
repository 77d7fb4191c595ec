"""Sealing the personal fields of a touch with its customer's data keys.

In a stored touch, each identifier (``customer.customer_id|phone|email|anonymous_id``)
is encrypted with the key of that identifier, and the free-text properties (``text``,
``name``, ``notes``) with the key of the touch's first identifier (its *primary*
key). A sealed value is the string ``enc1:<key_id>:<base64 AES-SIV ciphertext>``, so
the stored JSON keeps its shape and the projector reads the key id without
decrypting. AES-SIV is deterministic: the same identifier under the same key always
seals to the same string, which keeps repeated identifiers cheap to seal and to map.

A patient's referral (``type: referral``, ``kind: patient``) names the referring
patient's ``customer_id`` in ``referrer``: it is sealed as that patient's
``customer_id`` (their key, the same sealed string as in their own touches), so the
projector credits the referrer by pseudonym and forgetting the referrer shreds it.

Custom touches are private by default: every property of a custom touch that the
property policy (``journey.crypto.policy``) does not declare analytic is sealed too,
as its JSON text (``orjson.dumps(value)``) with the primary key.

Everything else (type, times, channel, doctor, amounts...) stays readable: those are
the non-personal facts that aggregates keep after a customer is forgotten.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag

from journey.domain.values import PERSONAL_PROPERTIES
from journey.crypto.keys import DataKey, KeyEntry, KeyStore, Subject
from journey.crypto.policy import PropertyPolicy, default_policy

__all__ = ["PREFIX", "Sealer", "key_id_of"]

PREFIX = "enc1:"
_CUSTOMER = b'"customer":'
_PERSONAL = re.compile(b'"(?:' + "|".join((*PERSONAL_PROPERTIES, "custom", "referral", "referrer")).encode() + b')"')
"""Any of these anywhere in a touch's JSON sends it down the field-by-field path (a
conservative test: a false match only costs speed). They name the free-text
properties, the types whose properties are sealed (custom) or name a patient
(referral), and a referral's referring patient."""
_CACHE = 50_000
_FREE_TEXT = b"free-text"
_CUSTOM = b"custom-property"


def key_id_of(value: str) -> str | None:
    """The key id a sealed value names, or None for a plain value."""
    return value.split(":", 2)[1] if value.startswith(PREFIX) else None


class Sealer:
    """Seals touches on the way into the event store and unseals them on the way out."""

    def __init__(self, keys: KeyStore, pseudonym: Any, policy: PropertyPolicy | None = None) -> None:
        self.keys = keys
        self.analytic = (policy or default_policy()).analytic
        """Custom properties stored in the clear; every other custom property is sealed."""
        self.pseudonym = pseudonym
        """``(kind, value) -> keyed pseudonym`` (``Pseudonymiser.key``): names keys."""
        self._entries: dict[tuple[str, str], KeyEntry] = {}  # (kind, identifier) -> its key, still wrapped
        self._keyed: dict[tuple[str, str], DataKey] = {}  # the keys unwrapped (to seal free text)
        self._sealed: dict[tuple[str, str], str] = {}  # (kind, identifier) -> sealed (AES-SIV is deterministic)
        self._customers: dict[tuple[tuple[str, str], ...], tuple[bytes, bytes]] = {}
        """A touch's identifiers -> its ``customer`` object's canonical bytes, plain and sealed."""
        self._by_id: dict[str, DataKey | None] = {}
        self._generation = keys.generation()
        self._unseal_value = lru_cache(maxsize=200_000)(self._open)

    def seal_all(self, touches: Iterable[bytes],
                 identifiers: Sequence[tuple[tuple[str, str], ...] | None] | None = None) -> list[bytes]:
        """Canonical touch JSON in, stored touch JSON (personal fields sealed) out.

        ``identifiers``: per touch, its customer's ``(kind, value)`` pairs in the
        canonical order (``Customer.identifiers()``), when the validator has them. A touch
        whose only personal fields are those (no free text, not custom, not a referral)
        then has its ``customer`` object replaced in the canonical bytes, without
        parsing and serialising the whole touch again; any other touch, or one whose
        ``customer`` object is not found as expected, is parsed and sealed field by field.

        Each identifier's key entry is looked up (or made) once per batch; an identifier
        is sealed from its entry (which holds it sealed) and a key is unwrapped only to
        seal free text."""
        touches = list(touches)
        self.refresh()
        # bounded memory: most identifiers are seen in a short span
        if len(self._entries) > _CACHE or len(self._customers) > _CACHE:
            self._entries.clear()
            self._keyed.clear()
            self._sealed.clear()
            self._customers.clear()
        in_place = set() if identifiers is None else {
            i for i, (touch, pairs) in enumerate(zip(touches, identifiers)) if pairs and not _PERSONAL.search(touch)}
        parsed = {i: orjson.loads(t) for i, t in enumerate(touches) if i not in in_place}
        self._ensure_keys(parsed.values(), [identifiers[i] for i in in_place])  # type: ignore[index]
        out = []
        for index, touch in enumerate(touches):
            sealed = self._splice(touch, identifiers[index]) if index in in_place else None  # type: ignore[index]
            if sealed is None:
                if index not in parsed:  # its customer object was not as expected: field by field
                    parsed[index] = orjson.loads(touch)
                    self._ensure_keys([parsed[index]], [])
                sealed = orjson.dumps(self._seal(parsed[index]))
            out.append(sealed)
        return out

    def _ensure_keys(self, parsed: Iterable[dict[str, Any]], pairs: Iterable[tuple[tuple[str, str], ...]]) -> None:
        """Look up (or make) the key entries of every identifier these touches need."""
        entries = self._entries
        missing: dict[tuple[str, str], None] = {}
        for touch in parsed:
            customer = touch.get("customer")
            if customer:
                for identifier in customer.items():
                    if identifier not in entries:
                        missing[identifier] = None
                referrer = _referring_patient(touch)
                if referrer is not None and ("customer_id", referrer) not in entries:
                    missing[("customer_id", referrer)] = None
        customers = self._customers
        for touch_pairs in pairs:
            if touch_pairs in customers:  # sealed before: its entries are here (cleared together)
                continue
            for identifier in touch_pairs:
                if identifier not in entries:
                    missing[identifier] = None
        if missing:
            subjects = {self.pseudonym(kind, value): (kind, value) for kind, value in missing}
            found = self.keys.entries_for(Subject(p, kind, value) for p, (kind, value) in subjects.items())
            for pseudonym, entry in found.items():
                entries[subjects[pseudonym]] = entry

    def _splice(self, touch: bytes, pairs: tuple[tuple[str, str], ...]) -> bytes | None:
        """``touch`` with its ``customer`` object sealed in place; None when the object
        is not exactly where and as expected (the caller then seals field by field).
        Only the top-level key can match: inside a JSON string a quote is escaped."""
        customer = self._customers.get(pairs)
        if customer is None:  # a patient's touches share it: made once, then looked up
            sealed = ",".join(f'"{kind}":"{self._seal_identifier(kind, value)}"' for kind, value in pairs)
            customer = self._customers[pairs] = (_CUSTOMER + orjson.dumps(dict(pairs)),
                                                 _CUSTOMER + b"{" + sealed.encode() + b"}")
        plain, sealed_customer = customer
        start = touch.find(plain)
        if start < 0:
            return None
        return b"".join((touch[:start], sealed_customer, touch[start + len(plain):]))

    def _seal(self, touch: dict[str, Any]) -> dict[str, Any]:
        customer = touch.get("customer")
        if not customer:
            return touch
        touch["customer"] = {kind: self._seal_identifier(kind, value) for kind, value in customer.items()}
        properties = touch.get("properties")
        if properties:
            if touch.get("type") == "custom":
                analytic = self.analytic
                for name, value in properties.items():
                    if name not in analytic and value is not None:
                        primary = self._primary(customer)
                        properties[name] = _seal_text(primary, orjson.dumps(value).decode(), _CUSTOM)
                return touch
            for name in PERSONAL_PROPERTIES:
                if isinstance(properties.get(name), str):
                    properties[name] = _seal_text(self._primary(customer), properties[name], _FREE_TEXT)
            referrer = _referring_patient(touch)
            if referrer is not None:
                properties["referrer"] = self._seal_identifier("customer_id", referrer)
        return touch

    def _primary(self, customer: dict[str, str]) -> DataKey:
        """The key free text is sealed with: the touch's first identifier's."""
        identifier = next(iter(customer.items()))
        key = self._keyed.get(identifier)
        if key is None:
            key = self._keyed[identifier] = self.keys.unwrap(self._entries[identifier])
        return key

    def _seal_identifier(self, kind: str, value: str) -> str:
        identifier = (kind, value)
        text = self._sealed.get(identifier)
        if text is None:
            entry = self._entries[identifier]
            text = self._sealed[identifier] = f"{PREFIX}{entry.key_id}:{base64.b64encode(entry.sealed).decode()}"
        return text

    def unseal(self, touch: dict[str, Any]) -> dict[str, Any]:
        """The touch with its sealed values decrypted. A value whose key was destroyed
        is left out, and the touch gets ``"erased": true``."""
        customer = touch.get("customer")
        if not customer or not any(isinstance(v, str) and v.startswith(PREFIX) for v in customer.values()):
            return touch
        erased = False
        opened: dict[str, Any] = {}
        for kind, value in customer.items():
            plain = self._unseal_value(value, kind)
            if plain is None:
                erased = True
            else:
                opened[kind] = plain
        touch = {**touch, "customer": opened}
        properties = touch.get("properties")
        if properties and touch.get("type") == "custom":
            properties = dict(properties)
            for name, value in touch["properties"].items():
                if isinstance(value, str) and value.startswith(PREFIX):
                    plain = self._unseal_value(value, _CUSTOM.decode())
                    if plain is None:
                        del properties[name]
                        erased = True
                    else:
                        properties[name] = orjson.loads(plain)
            touch["properties"] = properties
        elif properties:
            properties = dict(properties)
            for name in PERSONAL_PROPERTIES:
                value = properties.get(name)
                if isinstance(value, str) and value.startswith(PREFIX):
                    plain = self._unseal_value(value, "")
                    if plain is None:
                        del properties[name]
                        erased = True
                    else:
                        properties[name] = plain
            referrer = properties.get("referrer")
            if touch.get("type") == "referral" and isinstance(referrer, str) and referrer.startswith(PREFIX):
                plain = self._unseal_value(referrer, "customer_id")
                if plain is None:
                    del properties["referrer"]  # the referrer was forgotten, not this customer
                else:
                    properties["referrer"] = plain
            touch["properties"] = properties
        if erased:
            touch["erased"] = True
        return touch

    def _open(self, value: str, kind: str) -> str | None:
        if not value.startswith(PREFIX):
            return value
        _, key_id, data = value.split(":", 2)
        key = self._key(key_id)
        if key is None:
            return None
        try:
            return key.cipher.decrypt(base64.b64decode(data), [kind.encode() if kind else _FREE_TEXT]).decode()
        except InvalidTag:
            return None

    def _key(self, key_id: str) -> DataKey | None:
        if key_id not in self._by_id:
            if len(self._by_id) > _CACHE:
                self._by_id.clear()
            self._by_id[key_id] = self.keys.keys([key_id]).get(key_id)
        return self._by_id[key_id]

    def refresh(self) -> None:
        """Forget cached keys when keys were destroyed since (another process may have)."""
        generation = self.keys.generation()
        if generation != self._generation:
            self._entries.clear()
            self._keyed.clear()
            self._by_id.clear()
            self._sealed.clear()
            self._customers.clear()
            self._unseal_value.cache_clear()
            self._generation = generation


def _referring_patient(touch: dict[str, Any]) -> str | None:
    """The referring patient's customer_id of a patient's referral, else None."""
    properties = touch.get("properties") or {}
    referrer = properties.get("referrer")
    if touch.get("type") == "referral" and properties.get("kind") == "patient" and isinstance(referrer, str) \
            and not referrer.startswith(PREFIX):
        return referrer
    return None


def _seal_text(key: DataKey, value: str, associated: bytes) -> str:
    data = base64.b64encode(key.cipher.encrypt(value.encode(), [associated])).decode()
    return f"{PREFIX}{key.key_id}:{data}"
