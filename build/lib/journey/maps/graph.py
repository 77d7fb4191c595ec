"""The journey graph: networkx built from DuckDB aggregates, at two levels.

``activity`` maps every touch (the directly-follows graph; unfiltered it equals
PM4Py's DFG with its start and end activities); ``stage`` maps journey stages, where
consecutive touches of one stage are one visit to it. Everything is counted in DuckDB;
Python only receives one row per node and per edge, so a projection of millions of
touches gives a graph of the same few hundred rows.

Unfiltered, the activity map is what the projector already keeps (``journey_edges``,
``journey_nodes``, ``journey_variants``, recomputed at each derive): it is read from
there, not counted again. Any filter, and the stage level, count from ``touchpoints``.

A synthetic ``start`` node points at where journeys begin and every node points at
``exit`` with the customers whose journey ended there: drop-off is an edge to see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import duckdb
import networkx as nx

from journey.maps.filters import JourneyFilter, compile_customers

__all__ = ["EXIT", "START", "JourneyMap", "Level", "build_map"]

START = "start"
EXIT = "exit"
Level = Literal["activity", "stage"]

_RAW = {
    "activity": """
        SELECT customer_id, activity AS node, occurred_at, seq AS ord FROM touchpoints
        WHERE customer_id IN (SELECT customer_id FROM kept)""",
    "stage": """
        SELECT customer_id, node, occurred_at, ord FROM (
            SELECT customer_id, stage AS node, occurred_at, seq AS ord,
                lag(stage) OVER (PARTITION BY customer_id ORDER BY seq) AS before
            FROM touchpoints WHERE stage IS NOT NULL AND customer_id IN (SELECT customer_id FROM kept))
        WHERE before IS NULL OR before <> node""",
}

_TOP = """
CREATE OR REPLACE TEMP TABLE map_raw AS
SELECT r.* FROM map_raw r JOIN (
    SELECT customer_id FROM (SELECT customer_id, list(node ORDER BY ord) AS path FROM map_raw GROUP BY 1)
    WHERE path IN (SELECT path FROM (SELECT list(node ORDER BY ord) AS path FROM map_raw GROUP BY customer_id)
                   GROUP BY path ORDER BY count(*) DESC, array_to_string(path, ' > ') LIMIT ?)
) USING (customer_id)
"""

_STEPS = """
CREATE OR REPLACE TEMP TABLE map_steps AS
SELECT customer_id, node, row_number() OVER w = 1 AS first, lead(node) OVER w AS next_node,
    (epoch_us(lead(occurred_at) OVER w) - epoch_us(occurred_at)) / 1e6 AS seconds
FROM map_raw WINDOW w AS (PARTITION BY customer_id ORDER BY ord)
"""

_NODES = """
SELECT node, count(*) AS events, count(DISTINCT customer_id) AS customers,
    count(*) FILTER (WHERE first) AS starts, count(*) FILTER (WHERE next_node IS NULL) AS ends
FROM map_steps GROUP BY node ORDER BY node
"""

_EDGES = """
SELECT node, next_node, transitions, customers, mean_seconds, q[1] AS median_seconds, q[2] AS p90_seconds
FROM (SELECT node, next_node, count(*) AS transitions, count(DISTINCT customer_id) AS customers,
          avg(seconds) AS mean_seconds, quantile_cont(seconds, [0.5, 0.9]) AS q
      FROM map_steps WHERE next_node IS NOT NULL GROUP BY ALL)
ORDER BY node, next_node
"""

# Variants group lists of small integers, not of names: twice as fast on 1M touches.
_NAMES = """
CREATE OR REPLACE TEMP TABLE map_names AS
SELECT node, (row_number() OVER (ORDER BY node))::UINTEGER AS id FROM (SELECT DISTINCT node FROM map_raw)
"""

_VARIANTS = """
SELECT path, count(*) AS customers FROM (
    SELECT list(id ORDER BY ord) AS path FROM map_raw JOIN map_names USING (node) GROUP BY customer_id)
GROUP BY path
"""


@dataclass(frozen=True)
class JourneyMap:
    """The graph plus what was asked for; ``variants`` are the journeys behind it."""

    level: Level
    filter: JourneyFilter
    graph: nx.DiGraph
    customers: int
    variants: tuple[tuple[tuple[str, ...], int], ...]

    def real_edges(self) -> list[tuple[str, str, dict[str, Any]]]:
        """Edges between activities or stages, without the synthetic start and exit."""
        return [(s, t, d) for s, t, d in self.graph.edges(data=True) if s != START and t != EXIT]


_PROJECTED = {
    "nodes": "SELECT activity, events, customers, starts, ends FROM journey_nodes ORDER BY activity",
    "edges": "SELECT source, target, transitions, customers, mean_seconds, median_seconds, p90_seconds "
             "FROM journey_edges ORDER BY source, target",
    "variants": "SELECT activities, customers FROM journey_variants ORDER BY customers DESC, variant",
}


def build_map(con: duckdb.DuckDBPyConnection, level: Level = "activity",
              journey_filter: JourneyFilter | None = None, *, precomputed: bool = True) -> JourneyMap:
    """Aggregate the filtered journeys in DuckDB and build the DiGraph from the rows.
    ``precomputed=False`` counts the unfiltered activity map from ``touchpoints`` too
    (tests and the benchmark compare both ways)."""
    f = journey_filter or JourneyFilter()
    if precomputed and level == "activity" and f.keeps_everyone:
        nodes, edges, variants = (con.execute(_PROJECTED[k]).fetchall() for k in ("nodes", "edges", "variants"))
    else:
        nodes, edges, variants = _aggregate(con, level, f)
    journey_variants = tuple((tuple(p), n) for p, n in variants)
    customers = sum(n for _, n in journey_variants)
    graph = _graph(level, nodes, edges, customers)
    _hide_rare(graph, f.min_edge_share)
    return JourneyMap(level, f, graph, customers, journey_variants)


def _aggregate(con: duckdb.DuckDBPyConnection, level: Level,
               f: JourneyFilter) -> tuple[list[tuple[Any, ...]], ...]:
    """Nodes, edges and variants of the filtered journeys, counted from ``touchpoints``."""
    kept, params = compile_customers(f)
    con.execute(f"CREATE OR REPLACE TEMP TABLE map_raw AS WITH kept AS ({kept}) {_RAW[level]}", params)
    try:
        if f.top_variants is not None:
            con.execute(_TOP, [f.top_variants])
        con.execute(_STEPS)
        con.execute(_NAMES)
        names = dict(con.execute("SELECT id, node FROM map_names").fetchall())
        variants = [([names[i] for i in path], n) for path, n in con.execute(_VARIANTS).fetchall()]
        variants.sort(key=lambda v: (-v[1], " > ".join(v[0])))
        return con.execute(_NODES).fetchall(), con.execute(_EDGES).fetchall(), variants
    finally:
        con.execute("DROP TABLE IF EXISTS map_raw; DROP TABLE IF EXISTS map_steps; DROP TABLE IF EXISTS map_names")


def _graph(level: Level, nodes: list[tuple[Any, ...]], edges: list[tuple[Any, ...]],
           customers: int) -> nx.DiGraph:
    graph = nx.DiGraph(level=level)
    graph.add_node(START, kind="start", events=customers, customers=customers)
    graph.add_node(EXIT, kind="exit", events=customers, customers=customers)
    reach = {}
    for name, events, reached, starts, ends in nodes:
        graph.add_node(name, kind=level, events=events, customers=reached, starts=starts, ends=ends)
        reach[name] = reached
        if starts:
            graph.add_edge(START, name, transitions=starts, customers=starts,
                           share=starts / customers if customers else 0.0)
        if ends:
            graph.add_edge(name, EXIT, transitions=ends, customers=ends, share=ends / reached)
    for source, target, transitions, reached, mean, median, p90 in edges:
        graph.add_edge(source, target, transitions=transitions, customers=reached,
                       share=reached / reach[source], mean_seconds=mean, median_seconds=median,
                       p90_seconds=p90)
    return graph


def _hide_rare(graph: nx.DiGraph, min_share: float) -> None:
    """Drop edges below ``min_share`` of their source's customers, then nodes left with none."""
    if min_share <= 0:
        return
    graph.remove_edges_from([(s, t) for s, t, share in graph.edges(data="share") if share < min_share])
    graph.remove_nodes_from([n for n in list(graph) if graph.degree(n) == 0])
