"""The journey graph: on real logs the unfiltered activity map's JSON export equals
PM4Py's DFG (with start/end activities, performance and variants); the stage map equals
the projection's stage_transitions; readability options keep a 218-activity log small."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import pytest

from journey.maps.export import to_json
from journey.maps.filters import JourneyFilter
from journey.maps.graph import EXIT, START, build_map
from tests.conftest import DATA
from tests.maps.conftest import log_snapshot
from tests.projections.test_pm4py_oracle import reference

pytest.importorskip("pm4py")


def _open(path: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(path), read_only=True)


@pytest.mark.parametrize("log", ["hospital_billing_first10k_cases.csv", "receipt_wabo.csv"])
def test_json_export_of_the_activity_map_equals_pm4py(log: str, data_dir: Path, tmp_path: Path) -> None:
    con = _open(log_snapshot(data_dir / log, tmp_path))
    exported = to_json(build_map(con, "activity"))
    expected = reference(data_dir / log)

    real = [e for e in exported["edges"] if e["source"] != START and e["target"] != EXIT]
    assert {(e["source"], e["target"]): e["transitions"] for e in real} == expected["dfg"]
    assert {e["target"]: e["transitions"] for e in exported["edges"] if e["source"] == START} == expected["starts"]
    assert {e["source"]: e["transitions"] for e in exported["edges"] if e["target"] == EXIT} == expected["ends"]
    for edge in real:
        stats = expected["performance"][(edge["source"], edge["target"])]  # type: ignore[index]
        assert math.isclose(edge["mean_seconds"], stats["mean"], rel_tol=1e-9, abs_tol=1e-6)
        assert math.isclose(edge["median_seconds"], stats["median"], rel_tol=1e-9, abs_tol=1e-6)
    assert {tuple(v["activities"]): v["customers"] for v in exported["variants"]} == expected["variants"]
    assert exported["customers"] == sum(expected["variants"].values())  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def eshop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return log_snapshot(DATA / "eshop_clothing_2008_clicks.csv", tmp_path_factory.mktemp("eshop"))


def test_hiding_rare_edges_keeps_a_log_of_hundreds_of_activities_readable(eshop: Path) -> None:
    con = _open(eshop)
    full = build_map(con, "activity")
    assert full.graph.number_of_nodes() - 2 > 200
    readable = build_map(con, "activity", JourneyFilter(min_edge_share=0.1))
    assert readable.graph.number_of_edges() < full.graph.number_of_edges() / 10
    assert all(share >= 0.1 for _, _, share in readable.graph.edges(data="share"))
    kept = {(s, t): d for s, t, d in full.graph.edges(data=True) if d["share"] >= 0.1}
    assert {(s, t) for s, t in readable.graph.edges} == set(kept)
    assert all(readable.graph.degree(n) for n in readable.graph)


def test_top_variants_keep_only_the_most_common_journeys(eshop: Path) -> None:
    con = _open(eshop)
    full = build_map(con, "activity")
    top = build_map(con, "activity", JourneyFilter(top_variants=5))
    assert top.variants == full.variants[:5]
    assert top.customers == sum(n for _, n in full.variants[:5])
    assert set(top.graph) - {START, EXIT} == {a for path, _ in full.variants[:5] for a in path}


def test_edges_carry_customers_share_and_times(clinic: duckdb.DuckDBPyConnection) -> None:
    journey_map = build_map(clinic, "activity")
    g = journey_map.graph
    for source, target, data in journey_map.real_edges():
        assert data["share"] == pytest.approx(data["customers"] / g.nodes[source]["customers"])
        assert data["median_seconds"] <= data["p90_seconds"]
    customers = clinic.execute("SELECT count(*) FROM customers").fetchone()[0]
    assert journey_map.customers == customers == g.nodes[START]["customers"]
    assert sum(d["transitions"] for _, _, d in g.out_edges(START, data=True)) == customers
    assert sum(d["transitions"] for _, _, d in g.in_edges(EXIT, data=True)) == customers
    edges = clinic.execute("SELECT source, target, transitions, customers, p90_seconds FROM journey_edges").fetchall()
    assert {(s, t): (n, c, p) for s, t, n, c, p in edges} == {
        (s, t): (d["transitions"], d["customers"], d["p90_seconds"]) for s, t, d in journey_map.real_edges()}


def test_the_stage_map_equals_stage_transitions(clinic: duckdb.DuckDBPyConnection) -> None:
    journey_map = build_map(clinic, "stage")
    expected = clinic.execute("SELECT from_stage, to_stage, transitions, customers, mean_seconds, "
                              "median_seconds FROM stage_transitions").fetchall()
    got = {(s, t): d for s, t, d in journey_map.real_edges()}
    assert set(got) == {(r[0], r[1]) for r in expected}
    for source, target, transitions, customers, mean, median in expected:
        edge = got[(source, target)]
        assert (edge["transitions"], edge["customers"]) == (transitions, customers)
        assert edge["mean_seconds"] == pytest.approx(mean)
        assert edge["median_seconds"] == pytest.approx(median)
    staged = clinic.execute("SELECT count(DISTINCT customer_id) FROM touchpoints WHERE stage IS NOT NULL "
                            "AND customer_id IS NOT NULL").fetchone()[0]
    assert journey_map.customers == staged
    dropped = {s: n for s, _, n in journey_map.graph.in_edges(EXIT, data="customers")}
    last = dict(clinic.execute("SELECT current_stage, count(*) FROM customers WHERE current_stage IS NOT NULL "
                               "GROUP BY 1").fetchall())
    assert dropped == last


@pytest.mark.parametrize("log", ["receipt_wabo.csv"])
def test_counting_from_touchpoints_equals_the_projected_tables(log: str, data_dir: Path, tmp_path: Path) -> None:
    con = _open(log_snapshot(data_dir / log, tmp_path))
    projected, counted = to_json(build_map(con, "activity")), to_json(build_map(con, "activity", precomputed=False))
    assert projected["nodes"] == counted["nodes"] and projected["variants"] == counted["variants"]
    assert len(projected["edges"]) == len(counted["edges"])
    for ours, theirs in zip(projected["edges"], counted["edges"]):
        assert ours.keys() == theirs.keys()
        for key, value in ours.items():
            assert value == (pytest.approx(theirs[key], rel=1e-12) if isinstance(value, float) else theirs[key]), key
    assert JourneyFilter(min_edge_share=0.2).keeps_everyone and not JourneyFilter(top_variants=3).keeps_everyone
