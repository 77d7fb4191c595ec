"""Keyed pseudonyms for identifiers: analysts can join and count, not contact.

HMAC-SHA256 with a secret kept outside the database (``JOURNEY_HMAC_SECRET`` or a
0600 file under ``JOURNEY_HOME``). Without the secret a pseudonym cannot be
reversed by trying every phone number.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

__all__ = ["Pseudonymiser"]


class Pseudonymiser:
    def __init__(self, secret: bytes, cache: int = 1_000_000) -> None:
        if len(secret) < 16:
            raise ValueError("the HMAC secret must be at least 16 bytes")
        self._secret = secret
        self.key = lru_cache(maxsize=cache)(self._key)

    def _key(self, kind: str, value: str) -> str:
        digest = hmac.new(self._secret, f"{kind}\x00{value}".encode(), hashlib.sha256)
        return digest.hexdigest()[:24]

    @property
    def fingerprint(self) -> str:
        """Names the secret without revealing it (a different secret, a different name)."""
        return hmac.new(self._secret, b"journey-fingerprint", hashlib.sha256).hexdigest()[:16]
