from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from journey.domain.moments import parse_moment
from journey.errors import InputError


def test_a_date_is_midnight_utc() -> None:
    assert parse_moment("2025-03-01") == datetime(2025, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(("text", "offset"), [("2025-03-01T09:00:00+03:00", 3), ("2025-03-01T09:00:00Z", 0),
                                              ("2025-03-01T09:00-05:30", -5.5)])
def test_a_moment_keeps_its_offset(text: str, offset: float) -> None:
    moment = parse_moment(text)
    assert moment.utcoffset() == timedelta(hours=offset)
    assert (moment.hour, moment.minute) == (9, 0)


def test_a_time_without_an_offset_is_refused_with_what_to_do() -> None:
    with pytest.raises(InputError, match=r"--as-of '2025-03-01T09:00:00' has no timezone offset; add one"):
        parse_moment("2025-03-01T09:00:00", "--as-of")


@pytest.mark.parametrize("text", ["yesterday", "2025-13-01", "2025'; DROP TABLE x; --", ""])
def test_anything_else_is_not_a_moment(text: str) -> None:
    with pytest.raises(InputError, match="not an RFC 3339 timestamp such as 2025-03-01T09:00:00[+]03:00, nor a date"):
        parse_moment(text, "--since")


def test_the_same_instant_whatever_the_offset() -> None:
    assert parse_moment("2025-03-01T09:00:00+03:00") == datetime(2025, 3, 1, 6, tzinfo=timezone.utc)
