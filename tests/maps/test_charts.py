"""The charts carry the aggregates they are given, and nothing per patient."""

from __future__ import annotations

import duckdb

from journey.maps.charts import deviation_chart, funnel_chart, journey_graph_chart, sankey_chart
from journey.maps.clinic import funnel
from journey.maps.deviations import compare
from journey.maps.filters import JourneyFilter
from journey.maps.graph import EXIT, START, build_map
from journey.maps.ideal import load_ideal
from journey.projections.stage_model import default_stage_model


def test_the_sankey_splits_each_stage_into_onward_and_lost(clinic: duckdb.DuckDBPyConnection) -> None:
    rows, _ = funnel(clinic)
    link = sankey_chart(rows).data[0].link
    out_of = {}
    for source, value in zip(link.source, link.value):
        out_of[source] = out_of.get(source, 0) + value
    assert out_of == {i: r.entered for i, r in enumerate(rows[:-1]) if r.entered}
    assert list(funnel_chart(rows).data[0].x) == [r.entered for r in rows]
    into = {}
    for target, value in zip(link.target, link.value):
        into[target] = into.get(target, 0) + value
    for i, row in enumerate(rows[1:], start=1):  # what leaves a stage onward is what enters the next
        assert into.get(i, 0) == row.entered
    names = sankey_chart(rows).data[0].node.label
    pending = {names[t]: v for t, v in zip(link.target, link.value) if names[t].startswith("still deciding")}
    assert pending == {f"still deciding after {r.stage.replace('_', ' ')}": r.in_progress
                       for r in rows[:-1] if r.in_progress}
    assert sum(pending.values()) > 0  # a year of data: recent patients are still deciding, never drawn as lost


def test_the_graph_chart_draws_every_edge(clinic: duckdb.DuckDBPyConnection) -> None:
    journey_map = build_map(clinic, "stage", JourneyFilter(min_edge_share=0.05))
    figure = journey_graph_chart(journey_map, list(default_stage_model().names))
    assert len(figure.layout.annotations) == journey_map.graph.number_of_edges()
    xs = dict(zip(journey_map.graph, figure.data[-1].x))
    assert xs[START] == min(xs.values()) and xs[EXIT] == max(xs.values())  # start left, exit right
    assert xs["awareness"] < xs["contact"] < xs["booking"] < xs["first_visit"]  # stages in journey order


def test_the_ideal_chart_shows_the_rules_that_deviate(clinic: duckdb.DuckDBPyConnection) -> None:
    result = compare(clinic, load_ideal())
    bars = deviation_chart(result.rows).data[0]
    assert list(bars.x) == [r.share for r in result.rows if r.deviated]
