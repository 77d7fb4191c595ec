"""Names shared by the contract and its readers, kept light (no pydantic): the channels a
consent is given for."""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["CONSENT_CHANNELS", "ConsentChannel"]

ConsentChannel = Literal["sms", "email", "messenger", "calls"]
CONSENT_CHANNELS: tuple[str, ...] = get_args(ConsentChannel)
"""The channels a consent is given for (``all`` in a consent touch means every one)."""
