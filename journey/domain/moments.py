"""The one rule for moments given by a person (command-line options, Python callers).

A moment is either

- a date, ``2025-03-01``: the start of that day in UTC; or
- a date and time with an offset, ``2025-03-01T09:00:00+03:00`` or ``...Z``
  (RFC 3339, as touches carry them).

A time without an offset is refused: the engine never guesses a time zone (a clinic in
Moscow and its analyst in Amsterdam would read the same text three hours apart). Touches
themselves are validated by the contract (``journey.domain.values.Timestamp``), which
demands an offset too.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from journey.errors import InputError

__all__ = ["parse_moment"]

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_moment(text: str, what: str = "the moment") -> datetime:
    """``text`` as an aware datetime; ``what`` names the option in the error
    (``--as-of``)."""
    text = text.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{what} {text!r} is not an RFC 3339 timestamp such as 2025-03-01T09:00:00+03:00, "
                         "nor a date such as 2025-03-01") from None
    if _DATE.fullmatch(text):
        return moment.replace(tzinfo=UTC)
    if moment.tzinfo is None:
        raise InputError(f"{what} {text!r} has no timezone offset; add one, e.g. +03:00 or Z "
                         "(or give a date alone, which is midnight UTC)")
    return moment
