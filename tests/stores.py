"""Test wiring shared by every test package: the pseudonym secret and key stores."""

from __future__ import annotations

from journey.crypto.keys import InMemoryKeyStore, KeyStore, KeyWrap
from journey.crypto.sealer import Sealer
from journey.crypto.pseudonym import Pseudonymiser
from journey.store.event_store import EventStore
from journey.store.recorder import JourneyRecorder

PSEUDONYMS = Pseudonymiser(b"test-secret-0123456789abcdef")
WRAP = KeyWrap(b"m" * 32)


def sealed(recorder: JourneyRecorder, keys: KeyStore | None = None) -> EventStore:
    """An event store that seals personal fields, as the application wires it."""
    return EventStore(recorder, Sealer(keys or InMemoryKeyStore(WRAP), PSEUDONYMS.key))
