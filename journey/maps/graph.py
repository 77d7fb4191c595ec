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

# Nodes are numbered (in name order) before anything is grouped: steps, edges and
# variants then group small integers instead of names, about twice as fast on 1M touches.
_NAMES = {
    "activity": "SELECT DISTINCT activity AS node FROM touchpoints WHERE customer_id IS NOT NULL",
    "stage": "SELECT DISTINCT stage AS node FROM touchpoints WHERE stage IS NOT NULL",
}

_STEPS = """
CREATE OR REPLACE TEMP TABLE map_steps AS WITH kept AS ({kept})
SELECT r.customer_id, n.id, r.ord, row_number() OVER w = 1 AS first, lead(n.id) OVER w AS next_id,
    (epoch_us(lead(r.occurred_at) OVER w) - epoch_us(r.occurred_at)) / 1e6 AS seconds
FROM ({raw}) r JOIN map_names n ON n.node = r.node
WINDOW w AS (PARTITION BY r.customer_id ORDER BY r.ord)
"""

_PATHS = """
CREATE OR REPLACE TEMP TABLE map_paths AS
SELECT customer_id, list(id ORDER BY ord) AS path FROM map_steps GROUP BY customer_id
"""

_TOP = """
CREATE OR REPLACE TEMP TABLE map_steps AS SELECT * FROM map_steps WHERE customer_id IN (
    SELECT customer_id FROM map_paths WHERE path IN (SELECT unnest(?::UINTEGER[][])))
"""

_NODES = """
SELECT id, count(*) AS events, count(DISTINCT customer_id) AS customers,
    count(*) FILTER (WHERE first) AS starts, count(*) FILTER (WHERE next_id IS NULL) AS ends
FROM map_steps GROUP BY id ORDER BY id
"""

_EDGES = """
SELECT id, next_id, transitions, customers, mean_seconds, q[1] AS median_seconds, q[2] AS p90_seconds
FROM (SELECT id, next_id, count(*) AS transitions, count(DISTINCT customer_id) AS customers,
          avg(seconds) AS mean_seconds, quantile_cont(seconds, [0.5, 0.9]) AS q
      FROM map_steps WHERE next_id IS NOT NULL GROUP BY ALL)
ORDER BY id, next_id
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
    con.execute("CREATE OR REPLACE TEMP TABLE map_names AS SELECT node, "
                f"(row_number() OVER (ORDER BY node))::UINTEGER AS id FROM ({_NAMES[level]})")
    try:
        names = dict(con.execute("SELECT id, node FROM map_names").fetchall())
        con.execute(_STEPS.format(kept=kept, raw=_RAW[level]), params)
        con.execute(_PATHS)
        paths = con.execute("SELECT path, count(*) FROM map_paths GROUP BY path").fetchall()
        variants = sorted(((path, [names[i] for i in path], n) for path, n in paths),
                          key=lambda v: (-v[2], " > ".join(v[1])))
        if f.top_variants is not None:
            variants = variants[: f.top_variants]
            con.execute(_TOP, [[path for path, _, _ in variants]])
        nodes = [(names[i], *rest) for i, *rest in con.execute(_NODES).fetchall()]
        edges = [(names[a], names[b], *rest) for a, b, *rest in con.execute(_EDGES).fetchall()]
        return nodes, edges, [(named, n) for _, named, n in variants]
    finally:
        con.execute("DROP TABLE IF EXISTS map_names; DROP TABLE IF EXISTS map_steps; DROP TABLE IF EXISTS map_paths")


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
