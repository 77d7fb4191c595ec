"""Crypto primitives below the event store: per-identifier data keys wrapped with the
master key (crypto-shredding), sealing personal fields of stored events, keyed
pseudonyms, and redaction of records that leave the engine. See docs/privacy.md."""

from journey.crypto.keys import DataKey, InMemoryKeyStore, KeyStore, KeyWrap, Subject
from journey.crypto.pseudonym import Pseudonymiser
from journey.crypto.sealer import Sealer

__all__ = ["DataKey", "InMemoryKeyStore", "KeyStore", "KeyWrap", "Pseudonymiser", "Sealer", "Subject"]
