"""The funnel, failures, metrics and attribution commands, run as a user runs them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.commands import demo, journey


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    demo(home, 300)
    assert journey("project", home=home).returncode == 0
    return home


def test_funnel_json_is_stable(home: Path) -> None:
    result = journey("funnel", "--steps", "ad_click,call,stage:booking", "--window", "30d", "--json", home=home)
    assert result.returncode == 0, result.stderr
    steps = json.loads(result.stdout)["steps"]
    assert [s["name"] for s in steps] == ["ad_click", "call", "stage:booking"]
    for step in steps:
        assert {"name", "count", "conversion_from_previous", "median_seconds_to_convert"} <= set(step)
    assert steps[0]["count"] >= steps[1]["count"] >= steps[2]["count"] > 0
    assert steps[1]["conversion_from_previous"] == pytest.approx(steps[1]["count"] / steps[0]["count"])


def test_dropped_at_exports_the_customers_who_dropped(home: Path, tmp_path: Path) -> None:
    result = json.loads(journey("funnel", "--steps", "call,booking", "--json", home=home).stdout)
    out = tmp_path / "calls.csv"
    exported = journey("funnel", "--steps", "call,booking", "--dropped-at", "0", "--out", str(out), home=home)
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["customer_id"] and len(rows) - 1 == result["steps"][0]["dropped"] > 0
    ids = {r[0] for r in rows[1:]}
    known = journey("sql", "SELECT customer_id FROM customers", "--format", "csv", home=home).stdout.split()
    assert ids <= set(known) and not any("+7" in i or "@" in i for i in ids)


def test_breakdown_and_modes(home: Path) -> None:
    by = json.loads(journey("funnel", "--steps", "call,booking", "--by", "channel", "--json", home=home).stdout)
    whole = json.loads(journey("funnel", "--steps", "call,booking", "--json", home=home).stdout)
    assert sum(part[0]["count"] for part in by["breakdown"].values()) == whole["steps"][0]["count"]
    strict = json.loads(journey("funnel", "--steps", "call,booking", "--mode", "strict", "--json", home=home).stdout)
    assert strict["steps"][1]["count"] <= whole["steps"][1]["count"]


@pytest.mark.parametrize("args", [
    ("--steps", "call,booking", "--by", "channel; DROP TABLE touchpoints"),
    ("--steps", "call,booking", "--exclude", "no_show"),
    ("--steps", "call,booking", "--window", "1 fortnight"),
    ("--steps", "call", "--window", "1d"),
    ("--steps", "call,booking", "--by", "channel", "--by-touch", "step:x"),
    ("--steps", "call,booking", "--dropped-at", "1"),
])
def test_bad_input_gets_a_clear_error(home: Path, args: tuple[str, ...]) -> None:
    result = journey("funnel", *args, home=home)
    assert result.returncode == 2 and result.stderr.startswith("error: "), result.stderr
    assert journey("sql", "SELECT count(*) FROM touchpoints", home=home).returncode == 0


def test_injection_in_a_step_name_is_just_a_name(home: Path) -> None:
    result = journey("funnel", "--steps", "call,booking' OR '1'='1", "--json", home=home)
    assert result.returncode == 0 and json.loads(result.stdout)["steps"][1]["count"] == 0


def test_failures_metrics_and_attribution_commands(home: Path) -> None:
    failures = json.loads(journey("failures", "--json", "--all", home=home).stdout)
    assert set(failures) == {"stage_funnel", "failure_points", "failure_reasons", "stage_changes"}
    assert all(set(row) >= {"stage", "month", "loss_rate", "previous_loss_rate", "q_value", "significant"}
               for row in failures["stage_changes"]) and failures["stage_changes"]
    assert failures["stage_funnel"][0]["stage"] == "awareness"
    metrics = json.loads(journey("metrics", "--json", home=home).stdout)
    assert {m["metric"] for m in metrics} >= {"administrator_conversion", "missed_call_rate", "no_show_rate",
                                             "repeat_visits_per_new_patient", "lifetime_revenue",
                                             "cost_per_new_patient"}
    attribution = json.loads(journey("attribution", "--json", home=home).stdout)
    assert attribution["conversion"] == "visit" and attribution["channels"]
    table = journey("attribution", "--conversion", "stage:retention", home=home)
    assert table.returncode == 0 and "markov" in table.stdout


def test_commands_before_any_projection_say_what_to_do(tmp_path: Path) -> None:
    result = journey("funnel", "--steps", "a,b", home=tmp_path)
    assert result.returncode == 2 and "run `journey project`" in result.stderr


def test_every_figure_the_report_shows_equals_the_commands_json(home: Path) -> None:
    """One definition per metric: the report, `journey metrics` and `journey failures`
    show the same rows of the same tables."""
    import html
    import re

    import duckdb

    from journey.maps.report import render_report

    con = duckdb.connect(str(home / "analytics.duckdb"), read_only=True)
    try:
        page = render_report(con)
    finally:
        con.close()
    metrics = {(m["metric"], m["dimension"], m["value"]): m["result"]
               for m in json.loads(journey("metrics", "--json", home=home).stdout)}
    failures = json.loads(journey("failures", "--json", "--all", home=home).stdout)
    funnel = {row["stage"]: row for row in failures["stage_funnel"]}
    points = {(p["stage"], p["dimension"], p["value"]): p for p in failures["failure_points"]}
    changes = {row["stage"]: row for row in failures["stage_changes"]}
    checked: dict[str, int] = {}
    for key, raw in re.findall(r'data-metric="([^"]+)" data-value="([^"]*)"', page):
        key, shown = html.unescape(key), float(raw) if raw else None
        kind, _, rest = key.partition(":")
        if kind == "stage_funnel":
            stage, column = rest.split(":")
            expected = funnel[stage][column]
        elif kind == "failure_points":
            stage, dimension, value, column = rest.split(":")
            expected = points[(stage, dimension, value)][column]
        elif kind == "stage_changes":
            stage, column = rest.split(":")
            expected = changes[stage][column]
        elif kind == "clinic_metrics":
            metric, dimension, value = rest.split(":")
            expected = metrics[(metric, dimension, value)]
        elif kind in ("ideal_deviating", "consent_violations"):
            continue  # figures of the ideal journey and compliance, not of these commands
        else:
            kind, expected = "headline", metrics.get((key, "all", "all"))
        assert shown == (None if expected is None else pytest.approx(expected, rel=1e-12)), key
        checked[kind] = checked.get(kind, 0) + 1
    assert checked.get("headline") == 6 and checked.get("stage_funnel", 0) >= 20
    assert checked.get("clinic_metrics", 0) >= 30 and checked.get("stage_changes", 0) >= 3 * 3
