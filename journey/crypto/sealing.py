"""What a worker process needs to seal touches on its own: a picklable recipe for a
``Sealer`` with its own key-store connection.

Workers of one ingest share the key store; a key two workers make at once is made
once (``KeyStore.entries_for``: ``INSERT ... ON CONFLICT DO NOTHING``, then the winner's
key is read back), so every worker seals an identifier with the same key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from journey.crypto.keys import KeyWrap, key_store_at
from journey.crypto.policy import PropertyPolicy
from journey.crypto.pseudonym import Pseudonymiser
from journey.crypto.sealer import Sealer

__all__ = ["SealerSpec"]


@dataclass(frozen=True)
class SealerSpec:
    """The key store's URL, the master key, the pseudonym secret and the policy."""

    key_store_url: str
    master: bytes = field(repr=False)
    secret: bytes = field(repr=False)
    policy: PropertyPolicy = field(default_factory=PropertyPolicy)
    cache: int = 65_536

    def open(self) -> Sealer:
        """A new sealer with its own connection to the key store."""
        keys = key_store_at(self.key_store_url, KeyWrap(self.master))
        return Sealer(keys, Pseudonymiser(self.secret, self.cache).key, self.policy)
