"""Attribution models on hand-made journeys whose credit can be worked out by hand."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import duckdb
import pytest

from journey.funnels.attribution import attribute, removal_effects
from journey.funnels.model import parse_step

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
ROWS = [  # customer, type, channel, direction, day
    ("A", "ad_click", "social", None, 0), ("A", "ad_click", "search_ads", None, 4),
    ("A", "ad_click", "email", None, 8), ("A", "visit", "clinic", None, 10),
    ("B", "ad_click", "seo", None, 0), ("B", "visit", "clinic", None, 1),
    ("C", "ad_click", "social", None, 0),
    ("D", "ad_click", "search_ads", None, 0), ("D", "call", "seo", "inbound", 2), ("D", "visit", "clinic", None, 3),
    ("E", "call", "phone", "outbound", 0), ("E", "visit", "clinic", None, 1),
]


def table() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE TABLE touchpoints (customer_id VARCHAR, type VARCHAR, activity VARCHAR, stage VARCHAR, "
                "channel VARCHAR, direction VARCHAR, occurred_at TIMESTAMPTZ, seq BIGINT)")
    con.executemany("INSERT INTO touchpoints VALUES (?, ?, ?, NULL, ?, ?, ?, ?)",
                    [(c, t, t, ch, d, T0 + timedelta(days=day), i) for i, (c, t, ch, d, day) in enumerate(ROWS)])
    return con


def decay(*ages: float) -> list[float]:
    weights = [2 ** (-age / 7) for age in ages]
    return [w / sum(weights) for w in weights]


def test_every_model_shares_out_the_conversions_as_worked_out_by_hand() -> None:
    result = attribute(table(), parse_step("visit"))
    assert (result.journeys, result.conversions, result.conversions_without_touches) == (4, 3, 1)
    credit = {c.channel: c for c in result.channels}
    assert {c: credit[c].first_touch for c in credit} == {"social": 1, "search_ads": 1, "seo": 1, "email": 0}
    assert {c: credit[c].last_touch for c in credit} == {"social": 0, "search_ads": 0, "seo": 2, "email": 1}
    assert credit["search_ads"].linear == pytest.approx(1 / 3 + 1 / 2)
    assert credit["seo"].linear == pytest.approx(1.5)
    assert credit["search_ads"].position_based == pytest.approx(0.2 + 0.5)
    assert credit["social"].position_based == pytest.approx(0.4)
    a, d = decay(10, 6, 2), decay(3, 1)
    assert credit["search_ads"].time_decay == pytest.approx(a[1] + d[0])
    assert credit["email"].time_decay == pytest.approx(a[2])
    for model in ("first_touch", "last_touch", "linear", "time_decay", "position_based", "markov"):
        assert sum(getattr(c, model) for c in result.channels) == pytest.approx(3), model
    assert credit["social"].markov < credit["seo"].markov  # social also leads C nowhere


def test_removal_effects_of_a_small_chain() -> None:
    chain = {"(start)": {"a": 2, "b": 2}, "a": {"(conversion)": 2}, "b": {"(null)": 1, "(conversion)": 1}}
    effects = removal_effects(chain)
    assert effects == {"a": pytest.approx(2 / 3), "b": pytest.approx(1 / 3)}


def test_the_conversion_step_is_configurable_and_bound() -> None:
    con = table()
    assert attribute(con, parse_step("call")).conversions == 1  # D's inbound call after a search ad
    evil = attribute(con, parse_step("visit' OR '1'='1"))
    assert evil.conversions == 0 and con.execute("SELECT count(*) FROM touchpoints").fetchone() == (len(ROWS),)
