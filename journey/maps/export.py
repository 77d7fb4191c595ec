"""Exports of a journey map: JSON, GraphML, DOT and SVG (Graphviz ``dot``).

JSON keeps every attribute (``null`` where a value is unknown, e.g. durations on the
synthetic start edges); GraphML cannot hold nulls, so unknown attributes are left out
there. SVG is drawn by Graphviz, the well-kept layout engine, from our DOT text.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import networkx as nx

from journey.errors import InputError
from journey.maps.formats import FORMATS, Format
from journey.maps.graph import EXIT, START, JourneyMap

__all__ = ["FORMATS", "Format", "render_map", "to_dot", "to_graphml", "to_json", "to_svg", "write_map"]



def to_json(journey_map: JourneyMap) -> dict[str, Any]:
    """Nodes, edges (with every attribute) and the variants behind them."""
    g = journey_map.graph
    return {
        "level": journey_map.level,
        "customers": journey_map.customers,
        "filter": journey_map.filter.model_dump(mode="json"),
        "nodes": [{"id": n, **d} for n, d in g.nodes(data=True)],
        "edges": [{"source": s, "target": t, **d} for s, t, d in g.edges(data=True)],
        "variants": [{"activities": list(p), "customers": n} for p, n in journey_map.variants],
    }


def to_graphml(journey_map: JourneyMap) -> str:
    """GraphML text; attributes that are unknown (None) are omitted."""
    clean = nx.DiGraph(level=journey_map.level)
    clean.add_nodes_from((n, _known(d)) for n, d in journey_map.graph.nodes(data=True))
    clean.add_edges_from((s, t, _known(d)) for s, t, d in journey_map.graph.edges(data=True))
    return "\n".join(nx.generate_graphml(clean)) + "\n"


def _known(attributes: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attributes.items() if v is not None}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f" · {seconds / size:.1f} {unit}"
    return f" · {seconds:.0f} s"


def to_dot(journey_map: JourneyMap) -> str:
    """Graphviz DOT: node labels with volumes, edge labels with customers, share, median time;
    pen width grows with the share so the main road stands out."""
    lines = [f"digraph {_quote('journey_' + journey_map.level)} {{", "  rankdir=LR;",
             '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", fontname="Helvetica"];',
             '  edge [fontname="Helvetica", fontsize=10, color="#5b7bb4"];']
    for name, data in journey_map.graph.nodes(data=True):
        shape = ", shape=circle, fillcolor=\"#dddddd\"" if name in (START, EXIT) else ""
        label = f"{name}\n{data['customers']:,} customers"
        lines.append(f"  {_quote(name)} [label={_quote(label)}{shape}];")
    for source, target, data in journey_map.graph.edges(data=True):
        label = f"{data['customers']:,} ({data['share']:.0%}){_duration(data.get('median_seconds'))}"
        width = 1 + 4 * data["share"]
        lines.append(f"  {_quote(source)} -> {_quote(target)} [label={_quote(label)}, penwidth={width:.2f}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_svg(journey_map: JourneyMap) -> str:
    """SVG drawn by Graphviz ``dot`` (install the ``graphviz`` system package)."""
    dot = shutil.which("dot")
    if dot is None:
        raise InputError("SVG export needs Graphviz: install it (apt-get install graphviz) "
                         "or export --format dot")
    done = subprocess.run([dot, "-Tsvg"], input=to_dot(journey_map), capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise InputError(f"Graphviz could not draw the map: {done.stderr.strip()}")
    return done.stdout


def render_map(journey_map: JourneyMap, fmt: Format) -> str:
    """The map as text in ``fmt``."""
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "json":
        return json.dumps(to_json(journey_map), indent=2, ensure_ascii=False)
    return {"graphml": to_graphml, "dot": to_dot, "svg": to_svg}[fmt](journey_map)


def write_map(journey_map: JourneyMap, fmt: Format, out: Path) -> Path:
    """Write the map in ``fmt`` to ``out``."""
    text = render_map(journey_map, fmt) + ("\n" if fmt == "json" else "")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
