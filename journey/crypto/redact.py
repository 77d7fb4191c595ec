"""Redacting personal data from records that leave the engine (dead-letter messages).

Only what cannot be tied to a person passes: the record's shape, its type and times,
and for fields that may identify someone the placeholder ``"[redacted]"``.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from journey.domain.values import PERSONAL_PROPERTIES

__all__ = ["REDACTED", "redact_reason", "redact_record"]

REDACTED = "[redacted]"
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def redact_record(raw: bytes) -> bytes:
    """The record with its customer block and free text replaced; b"" when it is not
    a JSON object (nothing in it can be told apart from personal data)."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return b""
    if not isinstance(record, dict):
        return b""
    if "customer" in record:
        customer = record["customer"]
        record["customer"] = dict.fromkeys(customer, REDACTED) if isinstance(customer, dict) else REDACTED
    properties = record.get("properties")
    if isinstance(properties, dict):
        record["properties"] = {k: REDACTED if k in PERSONAL_PROPERTIES else _scrub(v) for k, v in properties.items()}
    return orjson.dumps({k: _scrub(v) if k not in ("customer", "properties") else v for k, v in record.items()})


def _scrub(value: Any) -> Any:
    """Nested free-form values may hold anything: keep numbers, booleans and short
    codes, redact other strings longer than a label."""
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str) and (len(value) > 64 or "@" in value or sum(c.isdigit() for c in value) >= 7):
        return REDACTED
    return value


def redact_reason(reason: str) -> str:
    """A rejection reason without the quoted input values it may cite."""
    return _QUOTED.sub("'…'", reason)
