"""Exports: JSON keeps every attribute, GraphML and SVG read back, DOT survives any
activity name (quotes, backslashes, newlines)."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import duckdb
import networkx as nx
import pytest

from journey.errors import InputError
from journey.maps.export import to_dot, to_svg, write_map
from journey.maps.filters import JourneyFilter
from journey.maps.graph import EXIT, START, JourneyMap, build_map


@pytest.fixture
def stage_map(clinic: duckdb.DuckDBPyConnection) -> JourneyMap:
    return build_map(clinic, "stage", JourneyFilter(min_edge_share=0.05))


def test_json_round_trips_nodes_and_edges(stage_map: JourneyMap, tmp_path: Path) -> None:
    data = json.loads(write_map(stage_map, "json", tmp_path / "m.json").read_text())
    assert data["level"] == "stage" and data["filter"]["min_edge_share"] == 0.05
    assert {n["id"]: n["customers"] for n in data["nodes"]} == dict(stage_map.graph.nodes(data="customers"))
    edges = {(e["source"], e["target"]): e for e in data["edges"]}
    assert set(edges) == set(stage_map.graph.edges)
    for (s, t), edge in edges.items():
        assert edge["share"] == pytest.approx(stage_map.graph.edges[s, t]["share"])
    assert sum(v["customers"] for v in data["variants"]) == data["customers"]


def test_graphml_reads_back_without_the_unknowns(stage_map: JourneyMap, tmp_path: Path) -> None:
    back = nx.read_graphml(write_map(stage_map, "graphml", tmp_path / "m.graphml"))
    assert set(back.edges) == set(stage_map.graph.edges)
    start_edge = next(iter(back.out_edges(START, data=True)))[2]
    assert "median_seconds" not in start_edge  # unknown for the synthetic start
    s, t, data = stage_map.real_edges()[0]
    assert back.edges[s, t]["median_seconds"] == pytest.approx(data["median_seconds"])
    assert back.nodes[EXIT]["customers"] == stage_map.customers


def test_svg_is_drawn_by_graphviz_even_for_awkward_names(tmp_path: Path) -> None:
    graph = nx.DiGraph(level="activity")
    awkward = ['say "hi"', "back\\slash", "two\nlines", "ünïcode → ok"]
    graph.add_node(START, customers=2)
    for name in awkward:
        graph.add_node(name, customers=1)
    for a, b in zip([START, *awkward], awkward):
        graph.add_edge(a, b, customers=1, share=0.5, median_seconds=90.0)
    journey_map = JourneyMap("activity", JourneyFilter(), graph, 2, ())
    svg = ElementTree.fromstring(to_svg(journey_map))
    titles = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}title")]
    assert 'say "hi"' in titles and "ünïcode → ok" in titles
    assert "digraph" in to_dot(journey_map)


def test_an_unknown_format_is_an_input_error(stage_map: JourneyMap, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown export format"):
        write_map(stage_map, "png", tmp_path / "m.png")  # type: ignore[arg-type]
