"""Actual versus ideal on hand-made journeys with known deviations (a real DuckDB with
the projection's schema), and on the demo clinic, which plants every kind."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from journey.maps.deviations import compare
from journey.maps.filters import JourneyFilter
from journey.maps.ideal import IdealJourney, load_ideal

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)

# customer, activity, at, direction, purpose, answered
JOURNEYS = [
    ("ideal", "call", T0, "inbound", None, True), ("ideal", "booking", T0 + H, None, None, None),
    ("ideal", "message", T0 + 3 * D, "outbound", "reminder", None), ("ideal", "visit", T0 + 4 * D + H, None, None, None),
    ("ideal", "message", T0 + 4 * D + 3 * H, "outbound", "thank_you", None),
    ("late_callback", "call", T0, "inbound", None, False),
    ("late_callback", "call", T0 + 0.5 * H, "outbound", None, True),
    ("late_callback", "booking", T0 + 0.6 * H, None, None, None), ("late_callback", "visit", T0 + 2 * D, None, None, None),
    ("late_reminder", "call", T0, "inbound", None, True), ("late_reminder", "booking", T0 + H, None, None, None),
    ("late_reminder", "message", T0 + 2 * D, "outbound", "reminder", None),
    ("late_reminder", "visit", T0 + 2 * D + 3 * H, None, None, None),
    ("late_reminder", "message", T0 + 2 * D + 5 * H, "outbound", "thank_you", None),
    ("order", "call", T0, "inbound", None, True), ("order", "booking", T0 + H, None, None, None),
    ("order", "visit", T0 + 3 * D, None, None, None),
    ("order", "message", T0 + 3 * D + H, "outbound", "thank_you", None),
    ("order", "message", T0 + 9 * D, "outbound", "reminder", None), ("order", "visit", T0 + 10 * D, None, None, None),
    ("prospect", "ad_click", T0 + 30 * D, None, None, None),
]


@pytest.fixture
def journeys(clinic_snapshot: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    con.execute("ATTACH ? AS clinic (READ_ONLY)", [str(clinic_snapshot)])
    con.execute("CREATE TABLE touchpoints AS SELECT * FROM clinic.touchpoints LIMIT 0")
    con.execute("CREATE TABLE customers AS SELECT * FROM clinic.customers LIMIT 0")
    con.executemany("INSERT INTO touchpoints (event_id, customer_id, type, activity, occurred_at, direction, purpose, "
                    "answered) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [[f"e{i}", c, a, a, at, d, p, ans] for i, (c, a, at, d, p, ans) in enumerate(JOURNEYS)])
    con.execute("UPDATE touchpoints SET seq = s.seq FROM (SELECT event_id, row_number() OVER "
                "(PARTITION BY customer_id ORDER BY occurred_at) AS seq FROM touchpoints) s "
                "WHERE s.event_id = touchpoints.event_id")
    con.execute("INSERT INTO customers (customer_id, first_touch_at) SELECT customer_id, min(occurred_at) "
                "FROM touchpoints GROUP BY 1")
    yield con
    con.close()


def test_each_kind_of_deviation_is_found_where_it_is(journeys: duckdb.DuckDBPyConnection) -> None:
    result = compare(journeys, load_ideal())
    found = set(journeys.execute("SELECT customer_id, kind, item, other FROM ideal_deviations").fetchall())
    assert found == {
        ("late_callback", "missed_deadline", "callback_15m", "callback"),
        ("late_callback", "missing_step", "reminder", None),
        ("late_callback", "missing_step", "thank_you", None),
        ("late_callback", "missed_deadline", "thank_you_48h", "thank_you"),  # never thanked, 48 h passed
        ("late_reminder", "missed_deadline", "reminder_1d", "appointment"),
        ("order", "out_of_order", "reminder", "first_visit"),
        ("prospect", "missing_step", "first_contact", None),
    }
    assert (result.customers, result.deviating) == (5, 4)
    rows = {(r.kind, r.item): (r.expected, r.deviated) for r in result.rows}
    assert rows[("missing_step", "reminder")] == (4, 1)  # four booked, one never reminded
    assert rows[("missed_deadline", "callback_15m")] == (1, 1)
    assert rows[("missed_deadline", "reminder_1d")] == (3, 1)
    seconds = journeys.execute("SELECT seconds FROM ideal_deviations WHERE item = 'callback_15m'").fetchone()[0]
    assert seconds == 1800
    summary = journeys.execute("SELECT kind, item, expected, deviated FROM ideal_summary ORDER BY item_order").fetchall()
    assert [(k, i, e, d) for k, i, e, d in summary] == [(r.kind, r.item, r.expected, r.deviated) for r in result.rows]


def test_a_filter_narrows_the_comparison(journeys: duckdb.DuckDBPyConnection) -> None:
    result = compare(journeys, load_ideal(), JourneyFilter(since=T0 + 10 * D))
    assert (result.customers, result.deviating) == (1, 1)


def test_the_demo_clinic_shows_every_kind_of_deviation(clinic: duckdb.DuckDBPyConnection) -> None:
    result = compare(clinic, load_ideal())
    deviated = {(r.kind, r.item): r.deviated for r in result.rows}
    for key in [("missing_step", "reminder"), ("missing_step", "thank_you"), ("out_of_order", "reminder"),
                ("missed_deadline", "callback_15m"), ("missed_deadline", "reminder_1d"),
                ("missed_deadline", "thank_you_48h")]:
        assert deviated[key] > 0, key
    for item in ("callback_15m", "reminder_1d", "thank_you_48h"):  # some meet the deadline too
        row = next(r for r in result.rows if r.item == item)
        assert 0 < row.deviated < row.expected, item
    per_customer = clinic.execute("SELECT count(DISTINCT customer_id) FROM ideal_deviations").fetchone()[0]
    assert per_customer == result.deviating


def _model(steps: str) -> IdealJourney:
    return IdealJourney.model_validate(tomllib.loads('name = "test"\n' + steps))


def test_where_reads_touch_properties(clinic: duckdb.DuckDBPyConnection) -> None:
    model = _model('[[steps]]\nid = "call"\nactivities = ["call"]\nafter = []\n'
                   '[[steps]]\nid = "online"\nactivities = ["booking"]\nwhere = { booked_via = "online" }\n')
    result = compare(clinic, model)
    expected = clinic.execute(
        "SELECT count(DISTINCT customer_id) FROM touchpoints WHERE activity = 'call' AND customer_id NOT IN "
        "(SELECT customer_id FROM touchpoints WHERE activity = 'booking' AND properties->>'booked_via' = 'online')"
    ).fetchone()[0]
    missing = next(r for r in result.rows if r.kind == "missing_step" and r.item == "online")
    assert missing.deviated == expected > 0


@pytest.mark.parametrize("hostile", ["x'); DROP TABLE touchpoints; --", "' OR '1'='1", '"; SELECT 1; --'])
def test_hostile_model_values_are_bound(clinic: duckdb.DuckDBPyConnection, hostile: str) -> None:
    steps = [{"id": "a", "activities": [hostile], "where": {"purpose": hostile, "booked_via": hostile}},
             {"id": "b", "activities": ["visit"]}]
    model = IdealJourney.model_validate({"name": hostile, "steps": steps})
    result = compare(clinic, model)
    customers = clinic.execute("SELECT count(*) FROM customers").fetchone()[0]
    assert result.rows[0].deviated == customers  # nobody matched the hostile step
    assert clinic.execute("SELECT count(*) FROM touchpoints").fetchone()[0] > 0
