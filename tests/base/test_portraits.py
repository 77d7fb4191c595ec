from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pytest

from journey.base.portraits import portraits
from journey.errors import InputError


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE TABLE touchpoints (occurred_at TIMESTAMPTZ)")
    con.execute("INSERT INTO touchpoints VALUES ('2025-06-30 10:00Z')")
    con.execute("""CREATE TABLE customers AS SELECT * FROM (VALUES
        ('a', 1990, 'female', 'implants', 'Basmanny', 'seo', 1, 100.0),
        ('b', 1991, 'female', 'implants', 'Lyublino', 'seo', 2, 300.0),
        ('c', 1988, 'female', 'implants', 'Basmanny', 'search_ads', 1, 50.0),
        ('d', 1960, 'male', 'caries', 'Maryino', 'referral', 3, 900.0),
        ('e', 1961, 'male', 'caries', NULL, NULL, 1, 100.0),
        ('f', 2012, 'female', 'bite', 'Basmanny', 'offline', 1, 10.0),
        ('g', NULL, 'male', 'caries', NULL, 'seo', 1, 10.0),
        ('h', 1990, 'female', 'implants', 'Basmanny', 'seo', 0, 0.0)
    ) c(customer_id, birth_year, sex, problem, district, first_channel, visits, revenue)""")
    return con


def test_the_largest_groups_with_their_shares_and_channels(con: duckdb.DuckDBPyConnection) -> None:
    result = portraits(con, 2)
    assert (result.patients, result.without_profile, result.revenue) == (6, 1, 1460.0)
    first, second = result.portraits
    assert (first.title, first.patients, first.revenue) == ("female, 30-44, implants", 3, 450.0)
    assert first.patient_share == pytest.approx(0.5) and first.revenue_share == pytest.approx(450 / 1460)
    assert first.channels == [("seo", 2), ("search_ads", 1)] and first.districts == ["Basmanny", "Lyublino"]
    assert (second.title, second.patients, second.revenue_per_patient) == ("male, 60+, caries", 2, 500.0)
    assert second.channels == [("(unknown)", 1), ("referral", 1)]


def test_ages_are_taken_at_the_moment(con: duckdb.DuckDBPyConnection) -> None:
    later = portraits(con, 3, datetime(2031, 1, 1, tzinfo=UTC))
    assert "female, 18-29, bite" in [p.title for p in later.portraits]  # 19 in 2031, 13 in 2025
    with pytest.raises(InputError, match="between 1 and 5"):
        portraits(con, 9)
