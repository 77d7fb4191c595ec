"""`journey map`, `journey ideal`, `journey report` and the demo's report, run as a user
runs them: real processes on a real JOURNEY_HOME."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import networkx as nx
import pytest

from tests.commands import journey


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("home")
    result = journey("demo", "--patients", "300", home=folder)
    assert result.returncode == 0, result.stderr
    report = folder / "report.html"
    assert f"the clinic report: {report.resolve()}" in result.stdout
    assert report.stat().st_size > 1_000_000 and 'data-metric="new_patients"' in report.read_text()
    return folder


def test_map_exports_each_format(home: Path) -> None:
    for fmt in ("json", "graphml", "dot", "svg"):
        out = home / f"map.{fmt}"
        result = journey("map", "--level", "stage", "--format", fmt, "--out", str(out), "--min-share", "0.05",
                         home=home)
        assert result.returncode == 0, result.stderr
        assert "stage map of" in result.stderr
    graph = nx.read_graphml(home / "map.graphml")
    assert "start" in graph and "exit" in graph and "booking" in graph
    assert (home / "map.svg").read_text().lstrip().startswith(("<?xml", "<svg"))


def test_map_filters_reach_the_query(home: Path) -> None:
    everyone = json.loads(journey("map", home=home).stdout)["customers"]
    seo = json.loads(journey("map", "--first-channel", "seo", "--top-variants", "3", home=home).stdout)
    con = duckdb.connect(str(home / "analytics.duckdb"), read_only=True)
    assert everyone == con.execute("SELECT count(*) FROM customers").fetchone()[0]
    assert len(seo["variants"]) == 3 and 0 < seo["customers"] < everyone
    con.close()


def test_ideal_prints_saves_and_exports(home: Path) -> None:
    result = journey("ideal", "--json", "--out", str(home / "ideal.duckdb"), "--deviations",
                     str(home / "dev.csv"), home=home)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["model"] == "Ideal clinic journey" and summary["deviating"] > 0
    con = duckdb.connect(str(home / "ideal.duckdb"), read_only=True)
    saved = con.execute("SELECT count(DISTINCT customer_id) FROM ideal_deviations").fetchone()[0]
    assert saved == summary["deviating"]
    assert con.execute("SELECT count(*) FROM ideal_summary").fetchone()[0] == len(summary["rows"])
    con.close()
    with (home / "dev.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len({r["customer_id"] for r in rows}) == summary["deviating"]
    text = journey("ideal", home=home).stdout
    assert "Call back within 15 minutes of a missed call" in text


def test_report_writes_the_page(home: Path) -> None:
    out = home / "r" / "clinic.html"
    result = journey("report", "--out", str(out), home=home)
    assert result.returncode == 0, result.stderr
    assert str(out.resolve()) in result.stdout and "<html" in out.read_text()


@pytest.mark.parametrize("args", [
    ("map", "--segment", "sex"), ("map", "--property", "x' OR 1=1=1"), ("map", "--since", "yesterday"),
    ("map", "--segment", "revenue=1"), ("map", "--top-variants", "0"), ("ideal", "--model", "/nonexistent.toml"),
    ("report", "--min-share", "2"),
])
def test_bad_input_is_one_clear_line(home: Path, args: tuple[str, ...]) -> None:
    result = journey(*args, home=home)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr


def test_without_a_projection_it_says_what_to_do(tmp_path: Path) -> None:
    result = journey("report", "--out", str(tmp_path / "r.html"), home=tmp_path)
    assert result.returncode == 2 and "journey project" in result.stderr
