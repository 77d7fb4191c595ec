"""Filters select whole journeys; every one agrees with a direct count on the
projection, and hostile strings stay data (bound) or are refused (names)."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pytest
from pydantic import ValidationError

from journey.errors import InputError
from journey.maps.filters import JourneyFilter, compile_customers, parse_pairs
from journey.maps.graph import build_map

INJECTIONS = ["x' OR '1'='1", "x\"; DROP TABLE touchpoints; --", "'); DELETE FROM customers; --", "$.a') OR (1=1"]


def _kept(con: duckdb.DuckDBPyConnection, f: JourneyFilter) -> set[str]:
    sql, params = compile_customers(f)
    return {r[0] for r in con.execute(sql, params).fetchall()}


def _ids(con: duckdb.DuckDBPyConnection, sql: str) -> set[str]:
    return {r[0] for r in con.execute(sql).fetchall()} - {None}  # ad spend has no customer


def test_each_filter_matches_a_direct_count(clinic: duckdb.DuckDBPyConnection) -> None:
    cases = [
        (JourneyFilter(channel=("seo",)), "SELECT DISTINCT customer_id FROM touchpoints WHERE channel = 'seo'"),
        (JourneyFilter(first_channel=("search_ads", "social")),
            "SELECT customer_id FROM customers WHERE first_channel IN ('search_ads', 'social')"),
        (JourneyFilter(doctor=("Dr. Volkov",)),
            "SELECT DISTINCT customer_id FROM touchpoints WHERE doctor = 'Dr. Volkov'"),
        (JourneyFilter(administrator=("Irina",)),
            "SELECT DISTINCT customer_id FROM touchpoints WHERE administrator = 'Irina'"),
        (JourneyFilter(segment={"sex": "female"}), "SELECT customer_id FROM customers WHERE sex = 'female'"),
        (JourneyFilter(properties={"booked_via": "online"}),
            "SELECT DISTINCT customer_id FROM touchpoints WHERE properties->>'booked_via' = 'online'"),
        (JourneyFilter(since=datetime(2025, 7, 1, tzinfo=UTC)),
            "SELECT customer_id FROM customers WHERE first_touch_at >= TIMESTAMPTZ '2025-07-01 00:00:00+00'"),
    ]
    for journey_filter, sql in cases:
        expected = _ids(clinic, sql)
        assert expected, journey_filter
        assert _kept(clinic, journey_filter) == expected, journey_filter
        assert build_map(clinic, "activity", journey_filter).customers == len(expected)


def test_filters_combine_as_and(clinic: duckdb.DuckDBPyConnection) -> None:
    both = JourneyFilter(channel=("seo",), segment={"sex": "female"})
    assert _kept(clinic, both) == _kept(clinic, JourneyFilter(channel=("seo",))) & _kept(
        clinic, JourneyFilter(segment={"sex": "female"}))


def test_filtered_journeys_stay_whole(clinic: duckdb.DuckDBPyConnection) -> None:
    seo = build_map(clinic, "activity", JourneyFilter(first_channel=("seo",)))
    touches = clinic.execute("SELECT count(*) FROM touchpoints JOIN customers USING (customer_id) "
                             "WHERE first_channel = 'seo'").fetchone()[0]
    assert sum(d["events"] for n, d in seo.graph.nodes(data=True) if d["kind"] == "activity") == touches


@pytest.mark.parametrize("hostile", INJECTIONS)
def test_hostile_values_are_bound_parameters(clinic: duckdb.DuckDBPyConnection, hostile: str) -> None:
    f = JourneyFilter(channel=(hostile,), properties={"booked_via": hostile}, segment={"city": hostile})
    assert _kept(clinic, f) == set()
    assert clinic.execute("SELECT count(*) FROM touchpoints").fetchone()[0] > 0


@pytest.mark.parametrize("hostile", INJECTIONS + ["Sex", "1abc", "a b", ""])
def test_hostile_names_are_refused(hostile: str) -> None:
    with pytest.raises((InputError, ValidationError)):
        JourneyFilter(properties={hostile: "x"})
    with pytest.raises((InputError, ValidationError)):
        JourneyFilter(segment={hostile: "x"})
    with pytest.raises(InputError):
        parse_pairs([f"{hostile}=x"], "property")


def test_segment_names_must_be_customer_columns() -> None:
    with pytest.raises(ValidationError, match="segment 'revenue' is not one of"):
        JourneyFilter(segment={"revenue": "1"})
    with pytest.raises(InputError, match="name=value"):
        parse_pairs(["sex"], "segment")
    with pytest.raises(ValidationError):
        JourneyFilter(colour="red")  # type: ignore[call-arg]
