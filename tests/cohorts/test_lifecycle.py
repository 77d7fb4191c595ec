"""Lifecycle against PostHog's own scenario (posthog/hogql_queries/insights/test/
test_lifecycle_query_runner.py, ``test_lifecycle_trend``): its events, its expected series
(PostHog's dormant counts are negative; here they are counts)."""

from __future__ import annotations

from datetime import UTC, datetime

from journey.cohorts.lifecycle import lifecycle
from journey.cohorts.periods import Calendar, parse_event
from tests.cohorts.scenarios import touchpoints

TREND = [("p1", t) for t in ("2020-01-11T12:00:00Z", "2020-01-12T12:00:00Z", "2020-01-13T12:00:00Z",
                             "2020-01-15T12:00:00Z", "2020-01-17T12:00:00Z", "2020-01-19T12:00:00Z")] + [
    ("p2", "2020-01-09T12:00:00Z"), ("p2", "2020-01-12T12:00:00Z"), ("p3", "2020-01-12T12:00:00Z"),
    ("p4", "2020-01-15T12:00:00Z")]


def _series(result: object, status: str) -> list[int]:
    return [getattr(p, status) for p in result.periods]  # type: ignore[attr-defined]


def test_lifecycle_trend() -> None:
    con = touchpoints(TREND)
    result = lifecycle(con, parse_event("pageview"), Calendar("day"), start=datetime(2020, 1, 12, tzinfo=UTC),
                       end=datetime(2020, 1, 19, tzinfo=UTC))
    assert [p.start.isoformat() for p in result.periods] == [f"2020-01-{d}" for d in range(12, 20)]
    assert _series(result, "dormant") == [0, 2, 1, 0, 2, 0, 1, 0]
    assert _series(result, "new") == [1, 0, 0, 1, 0, 0, 0, 0]
    assert _series(result, "resurrecting") == [1, 0, 0, 1, 0, 1, 0, 1]
    assert _series(result, "returning") == [1, 1, 0, 0, 0, 0, 0, 0]


def test_partial_range_counts_activity_before_the_first_period() -> None:
    """PostHog ``test_events_query_partial_range``: 2020-01-12..14, day."""
    con = touchpoints(TREND)
    result = lifecycle(con, parse_event("any"), Calendar("day"), start=datetime(2020, 1, 12, tzinfo=UTC),
                       end=datetime(2020, 1, 14, tzinfo=UTC))
    assert [(p.new, p.returning, p.resurrecting, p.dormant) for p in result.periods] == [
        (1, 1, 1, 0),   # 12th: p3 new, p1 returning, p2 resurrecting
        (0, 1, 0, 2),   # 13th: p1 returning; p2, p3 dormant
        (0, 0, 0, 1),   # 14th: p1 dormant
    ]


def test_new_means_the_first_touch_of_any_kind_not_the_first_event() -> None:
    con = touchpoints([("a", "2025-01-01T10:00:00Z", "call"), ("a", "2025-02-03T10:00:00Z", "visit"),
                       ("b", "2025-02-04T10:00:00Z", "visit")])
    result = lifecycle(con, parse_event("visit"), Calendar("month"), start=datetime(2025, 1, 1, tzinfo=UTC),
                       end=datetime(2025, 3, 1, tzinfo=UTC))
    assert [(p.new, p.resurrecting, p.dormant) for p in result.periods] == [(0, 0, 0), (1, 1, 0), (0, 0, 2)]


def test_a_breakdown_splits_the_series_and_adds_up_to_them() -> None:
    con = touchpoints(TREND)
    con.execute("CREATE TABLE customers AS SELECT * FROM (VALUES ('p1', 'Dr. Volkov'), ('p2', 'Dr. Volkov'), "
                "('p3', 'Dr. Petrov')) c(customer_id, first_visit_doctor)")
    whole = lifecycle(con, parse_event("pageview"), Calendar("day"), start=datetime(2020, 1, 12, tzinfo=UTC),
                      end=datetime(2020, 1, 19, tzinfo=UTC))
    split = lifecycle(con, parse_event("pageview"), Calendar("day"), start=datetime(2020, 1, 12, tzinfo=UTC),
                      end=datetime(2020, 1, 19, tzinfo=UTC), by="first_visit_doctor")
    assert split.breakdown is not None and sorted(split.breakdown) == ["(none)", "Dr. Petrov", "Dr. Volkov"]
    assert split.periods == whole.periods
    assert _series_of(split.breakdown["(none)"], "new") == [0, 0, 0, 1, 0, 0, 0, 0]  # p4, no first visit
    assert _series_of(split.breakdown["Dr. Petrov"], "dormant") == [0, 1, 0, 0, 0, 0, 0, 0]  # p3


def _series_of(periods: list, status: str) -> list[int]:
    return [getattr(p, status) for p in periods]
