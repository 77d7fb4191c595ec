"""Privacy: per-customer keys (crypto-shredding), sealing personal fields of stored
events, forgetting a customer, consent rules. See docs/privacy.md."""

from journey.privacy.keys import DataKey, InMemoryKeyStore, KeyStore, KeyWrap, Subject
from journey.privacy.sealer import Sealer

__all__ = ["DataKey", "InMemoryKeyStore", "KeyStore", "KeyWrap", "Sealer", "Subject"]
