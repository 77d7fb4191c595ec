"""Figures as a manager reads them: money, durations, shares and significance in words."""

from __future__ import annotations

from journey.maps.format import cell, display_rows, duration, figure, money, share, significance


def test_money_has_thousands_separators_and_the_currency() -> None:
    assert money(1_460_000.4, "RUB") == "1,460,000 RUB"
    assert money(None, "RUB") == "not known"
    assert figure(4223.37, "RUB") == "4,223 RUB"


def test_durations_read_in_minutes_hours_and_days() -> None:
    assert duration(45) == "45 seconds"
    assert duration(245) == "4 minutes"
    assert duration(5.5 * 3600) == "5.5 hours"
    assert duration(25 * 3600) == "25 hours"
    assert duration(4.2 * 86400) == "4.2 days"
    assert duration(30 * 86400) == "30 days"
    assert duration(365 * 86400) == "12 months"


def test_shares_and_significance_in_words() -> None:
    assert share(0.10874) == "10.9%" and figure(0.5, "share") == "50.0%"
    assert significance(4.5, 50, 0.3) == "4.5x as often, 50 patients, could be chance"
    assert significance(1.53, 144, 5e-11).endswith("very unlikely to be chance")
    assert significance(1.2, 382, 0.0016).endswith("unlikely to be chance")
    assert significance(None, 12, None) == "12 patients, too few patients to tell"


def test_table_cells_never_print_exponents() -> None:
    columns = ["metric", "numerator", "result", "unit", "median_seconds_to_next", "lift", "p_value", "failure_rate"]
    row = ("revenue", 1_460_000.0, 1_460_000.0, "RUB", 7200.0, 1.534, 3.1e-12, 0.778)
    assert display_rows(columns, [row]) == [
        ["revenue", "1,460,000", "1,460,000 RUB", "RUB", "2.0 hours", "1.53x", "3.1e-12", "77.8%"]]
    assert cell("entered", 3075) == "3,075" and cell("significant", True) == "True" and cell("x", None) == ""
