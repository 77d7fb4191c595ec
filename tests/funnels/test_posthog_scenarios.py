"""Funnels against PostHog's own scenarios (posthog/hogql_queries/insights/funnels/test/):
their journeys, their expected counts. Events without a timestamp in PostHog's tests are
written one after another; here they are one second apart, in the order written.

Where PostHog and ClickHouse's windowFunnel differ, we follow PostHog: a repeated step
needs a touch of its own, and an unordered funnel counts any k of its steps at level k.
"""

from __future__ import annotations

from typing import Any

import pytest

from journey.funnels.engine import run_funnel
from tests.funnels.test_engine import request, table

DAY = 14 * 86400  # PostHog's default conversion window


def _journeys(people: dict[str, list[str]]) -> Any:
    return table([(person, event, i, None) for person, events in people.items() for i, event in enumerate(events)])


def _counts(people: dict[str, list[str]], steps: str, mode: str = "ordered") -> list[int]:
    result = run_funnel(_journeys(people), request(steps, DAY, mode=mode))
    return [s.count for s in result.steps]


REPEAT_STEPS = "user signed up,$pageview,$pageview,$pageview,$pageview"


def test_advanced_funnel_with_repeat_steps() -> None:
    """test_funnel.py ``test_advanced_funnel_with_repeat_steps``: 5, 4, 3, 2, 1."""
    people = {
        "stopped_after_signup1": ["user signed up"],
        "stopped_after_pageview1": ["user signed up", "$pageview"],
        "stopped_after_pageview2": ["user signed up", "$pageview", "blaah blaa", "$pageview"],
        "stopped_after_pageview3": ["user signed up", "$pageview", "blaah blaa", "$pageview", "$pageview",
                                    "blaah blaa"],
        "stopped_after_pageview4": ["user signed up", "$pageview", "$pageview", "$pageview", "$pageview"],
    }
    assert _counts(people, REPEAT_STEPS) == [5, 4, 3, 2, 1]


def test_advanced_funnel_with_repeat_steps_out_of_order_events() -> None:
    """test_funnel.py ``test_advanced_funnel_with_repeat_steps_out_of_order_events``: 5, 4, 1, 1, 1
    (person1's "random" and "stopped_after_signup1" are one person)."""
    people = {
        "person1": ["$pageview", "user signed up"],
        "person2": ["user signed up", "$pageview"],
        "person3": ["$pageview", "user signed up", "blaah blaa", "$pageview"],
        "person4": ["blaah blaa", "$pageview", "blaah blaa", "$pageview", "user signed up", "$pageview"],
        "person5": ["user signed up", "$pageview", "blaah blaa", "$pageview", "$pageview", "$pageview"],
        "person6": ["$pageview", "blaah blaa", "$pageview", "$pageview", "$pageview"],
    }
    assert _counts(people, REPEAT_STEPS) == [5, 4, 1, 1, 1]


UNORDERED = {
    "stopped_after_signup1": ["user signed up"],
    "stopped_after_pageview1": ["$pageview", "user signed up"],
    "stopped_after_insightview": ["user signed up", "$pageview", "blaah blaa", "insight viewed"],
    "stopped_after_insightview2": ["insight viewed", "$pageview", "user signed up"],
    "stopped_after_insightview3": ["$pageview", "user signed up", "blaah blaa", "insight viewed"],
    "stopped_after_insightview4": ["blaah blaa", "insight viewed"],
    "stopped_after_insightview5": ["$pageview", "blaah blaa"],
    "stopped_after_insightview6": ["insight viewed", "$pageview"],
}


def test_basic_unordered_funnel() -> None:
    """test_funnel_unordered.py ``test_basic_unordered_funnel``: 8, 5, 3."""
    assert _counts(UNORDERED, "user signed up,$pageview,insight viewed", "unordered") == [8, 5, 3]


def test_big_multi_step_unordered_funnel() -> None:
    """test_funnel_unordered.py ``test_big_multi_step_unordered_funnel``: 8, 5, 3, 1."""
    people = {
        "stopped_after_signup1": ["user signed up"],
        "stopped_after_pageview1": ["$pageview", "crying"],
        "stopped_after_insightview": ["user signed up", "$pageview", "blaah blaa", "insight viewed"],
        "stopped_after_insightview2": ["insight viewed", "crying", "user signed up"],
        "stopped_after_insightview3": ["$pageview", "user signed up", "crying", "insight viewed"],
        "stopped_after_insightview4": ["blaah blaa", "insight viewed"],
        "stopped_after_insightview5": ["$pageview", "blaah blaa"],
        "stopped_after_insightview6": ["insight viewed", "$pageview"],
    }
    assert _counts(people, "user signed up,$pageview,insight viewed,crying", "unordered") == [8, 5, 3, 1]


def test_unordered_conversion_window() -> None:
    """test_funnel_unordered.py ``test_basic_unordered_funnel_conversion_times`` shape, with a
    one-hour window: steps count only when done within the window of one another."""
    con = table([("p", "$pageview", 0, None), ("p", "user signed up", 3600 * 2, None),
                 ("q", "insight viewed", 0, None), ("q", "user signed up", 1800, None), ("q", "$pageview", 3000, None)])
    result = run_funnel(con, request("user signed up,$pageview,insight viewed", 3600, mode="unordered"))
    assert [s.count for s in result.steps] == [2, 1, 1]


@pytest.mark.parametrize("mode", ["ordered", "strict"])
def test_a_repeated_step_in_ordered_and_strict_needs_its_own_touch(mode: str) -> None:
    con = table([("one_visit", "visit", 0, None), ("two_visits", "visit", 0, None), ("two_visits", "visit", 60, None)])
    assert [s.count for s in run_funnel(con, request("visit,visit", 3600, mode=mode)).steps] == [2, 1]
