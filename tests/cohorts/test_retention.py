"""Retention against PostHog's own scenarios (posthog/hogql_queries/insights/test/
test_retention_query_runner.py): their events, their expected matrices."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from journey.cohorts.periods import Calendar, parse_event
from journey.cohorts.retention import retention
from journey.errors import InputError
from tests.cohorts.scenarios import touchpoints

ANY = parse_event("any")


def _date(day: int, hour: int = 5, month: int = 0) -> str:
    """PostHog's ``_date``: 2020-06-10 plus ``day`` days and ``month`` months, at ``hour``."""
    return datetime(2020, 6 + month, 10 + day, hour).isoformat()


def _matrix(result: object) -> list[list[int]]:
    return [c.retained for c in result.cohorts]  # type: ignore[attr-defined]


# person1 and alias1 are one person in PostHog; here they are one customer
DAY_EVENTS = [("person1", _date(0)), ("person1", _date(1)), ("person1", _date(2)), ("person1", _date(5)),
              ("person1", _date(5, 9)), ("person1", _date(6)), ("person2", _date(1)), ("person2", _date(2)),
              ("person2", _date(3)), ("person2", _date(6))]


def test_day_interval() -> None:
    """PostHog ``test_day_interval``: date_to day 10, 11 intervals."""
    con = touchpoints(DAY_EVENTS)
    result = retention(con, ANY, ANY, Calendar("day"), 11, end=datetime.fromisoformat(_date(10, hour=6) + "+00:00"))
    assert result.cohorts[0].start.isoformat() == "2020-06-10"
    assert _matrix(result) == [
        [1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0],
        [2, 2, 1, 0, 1, 2, 0, 0, 0, 0, 0],
        [2, 1, 0, 1, 2, 0, 0, 0, 0, 0, 0],
        [1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [0] * 11, [0] * 11, [0] * 11, [0] * 11,
    ]


def test_month_interval() -> None:
    """PostHog ``test_month_interval``: date_to 2020-11-25, monthly, 11 intervals."""
    con = touchpoints([
        ("person1", _date(0, month=-5)), ("person2", _date(0, month=-5)), ("person1", _date(0, month=-4)),
        ("person2", _date(0, month=-4)), ("person1", _date(0, month=-3)), ("person2", _date(0, month=-3)),
        ("person1", _date(0, month=-1)), ("person1", _date(0, month=0)), ("person2", _date(0, month=0)),
        ("person2", _date(0, month=1)), ("person1", _date(0, month=3)), ("person2", _date(0, month=5)),
    ])
    result = retention(con, ANY, ANY, Calendar("month"), 11,
                       end=datetime.fromisoformat(_date(15, month=5, hour=0) + "+00:00"))
    assert [c.start.isoformat() for c in result.cohorts] == [f"2020-{m:02d}-01" for m in range(1, 12)]
    assert _matrix(result) == [
        [2, 2, 2, 0, 1, 2, 1, 0, 1, 0, 1],
        [2, 2, 0, 1, 2, 1, 0, 1, 0, 1, 0],
        [2, 0, 1, 2, 1, 0, 1, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0],
        [2, 1, 0, 1, 0, 1, 0, 0, 0, 0, 0],
        [1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [0] * 11,
        [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ]


def test_nothing_in_range_gives_empty_cohorts_not_an_error() -> None:
    """PostHog ``test_retention_default``-like: events long before the range."""
    con = touchpoints(DAY_EVENTS)
    result = retention(con, ANY, ANY, Calendar("day"), 3, end=datetime(2021, 1, 1, tzinfo=UTC))
    assert _matrix(result) == [[0, 0, 0]] * 3


def test_first_time_puts_a_customer_only_in_the_period_of_their_first_start() -> None:
    con = touchpoints(DAY_EVENTS)
    recurring = retention(con, ANY, ANY, Calendar("day"), 4, start=datetime(2020, 6, 10, tzinfo=UTC),
                          end=datetime(2020, 6, 13, tzinfo=UTC))
    first = retention(con, ANY, ANY, Calendar("day"), 4, start=datetime(2020, 6, 10, tzinfo=UTC),
                      end=datetime(2020, 6, 13, tzinfo=UTC), first_time=True)
    assert [c.size for c in recurring.cohorts] == [1, 2, 2, 1]
    assert [c.size for c in first.cohorts] == [1, 1, 0, 0]
    assert _matrix(first)[1] == [1, 1, 1, 0]  # person2: first on day 1, back on days 2 and 3


def test_start_and_return_events_differ() -> None:
    con = touchpoints([("a", "2025-01-06T10:00:00Z", "first_visit"), ("a", "2025-01-20T10:00:00Z", "visit"),
                       ("b", "2025-01-07T10:00:00Z", "first_visit"), ("b", "2025-01-08T10:00:00Z", "visit"),
                       ("c", "2025-01-13T10:00:00Z", "visit")])
    result = retention(con, parse_event("first_visit"), parse_event("visit"), Calendar("week"), 3,
                       start=datetime(2025, 1, 6, tzinfo=UTC), end=datetime(2025, 1, 20, tzinfo=UTC))
    # week of 6 Jan: a and b started; b's visit in the same week is not a return, a's two weeks later is
    assert _matrix(result) == [[2, 0, 1], [0, 0, 0], [0, 0, 0]]


def test_weeks_follow_the_clinic_time_zone_and_week_start() -> None:
    # Sunday 2025-01-12 22:30 UTC is Monday 01:30 in Moscow
    con = touchpoints([("a", "2025-01-12T22:30:00Z"), ("a", "2025-01-20T10:00:00Z")])
    utc = retention(con, ANY, ANY, Calendar("week"), 3, start=datetime(2025, 1, 6, tzinfo=UTC),
                    end=datetime(2025, 1, 20, tzinfo=UTC))
    moscow = retention(con, ANY, ANY, Calendar("week", "Europe/Moscow"), 3, start=datetime(2025, 1, 6, tzinfo=UTC),
                       end=datetime(2025, 1, 20, tzinfo=UTC))
    sunday = retention(con, ANY, ANY, Calendar("week", week_start="sunday"), 3,
                       start=datetime(2025, 1, 5, tzinfo=UTC), end=datetime(2025, 1, 20, tzinfo=UTC))
    assert [c.start.isoformat() for c in utc.cohorts] == ["2025-01-06", "2025-01-13", "2025-01-20"]
    assert _matrix(utc) == [[1, 0, 1], [0, 0, 0], [1, 0, 0]]
    assert _matrix(moscow) == [[0, 0, 0], [1, 1, 0], [1, 0, 0]]
    assert [c.start.isoformat() for c in sunday.cohorts] == ["2025-01-05", "2025-01-12", "2025-01-19"]
    assert _matrix(sunday) == [[0, 0, 0], [1, 1, 0], [1, 0, 0]]


def test_bad_requests_say_what_to_do() -> None:
    con = touchpoints(DAY_EVENTS)
    with pytest.raises(InputError, match="--intervals"):
        retention(con, ANY, ANY, Calendar("day"), 0)
    with pytest.raises(InputError, match="--from is after --to"):
        retention(con, ANY, ANY, Calendar("day"), 3, start=datetime(2021, 1, 1, tzinfo=UTC),
                  end=datetime(2020, 1, 1, tzinfo=UTC))
    with pytest.raises(InputError, match="IANA"):
        Calendar("day", "Mars/Olympus'")
    with pytest.raises(InputError, match="stage:booking"):
        parse_event("stage:")


def test_a_breakdown_splits_the_cohorts_and_adds_up_to_them() -> None:
    con = touchpoints(DAY_EVENTS)
    con.execute("CREATE TABLE customers AS SELECT * FROM (VALUES ('person1', 'seo'), ('person2', NULL)) "
                "c(customer_id, first_channel)")
    whole = retention(con, ANY, ANY, Calendar("day"), 11, end=datetime.fromisoformat(_date(10, hour=6) + "+00:00"))
    split = retention(con, ANY, ANY, Calendar("day"), 11, end=datetime.fromisoformat(_date(10, hour=6) + "+00:00"),
                      by="first_channel")
    assert split.breakdown is not None and sorted(split.breakdown) == ["(none)", "seo"]
    assert _matrix(split) == _matrix(whole)
    assert [c.retained for c in split.breakdown["seo"]][0] == [1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0]
    assert [c.size for c in split.breakdown["(none)"]] == [0, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    with pytest.raises(InputError, match="--by"):
        retention(con, ANY, ANY, Calendar("day"), 3, by="phone")
