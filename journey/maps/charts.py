"""The report's charts, drawn with plotly from aggregates only.

Each function takes a handful of rows (stages, edges, rules) and returns a figure;
the page embeds them as JSON and plotly.js draws them in the browser.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from journey.maps.clinic import FunnelRow
from journey.maps.format import duration
from journey.maps.deviations import SummaryRow
from journey.maps.graph import EXIT, START, JourneyMap

__all__ = ["deviation_chart", "funnel_chart", "journey_graph_chart", "sankey_chart", "sankey_links"]

_BLUE, _RED, _GREY = "#3b6fb6", "#d0574f", "#9aa5b1"
_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 10, "b": 10}, "font": {"family": "Helvetica, Arial, sans-serif"},
           "paper_bgcolor": "white", "plot_bgcolor": "white", "height": 420}


def _label(stage: str) -> str:
    return stage.replace("_", " ")


def sankey_links(rows: list[FunnelRow]) -> tuple[list[str], list[tuple[int, int, int]]]:
    """Node names and (source, target, patients) links: from every stage but the last, the
    patients who moved on, those still deciding and those lost, so each stage's in and
    out balance (``stage_funnel``: entered = reached_next + in_progress + lost)."""
    n = len(rows) - 1
    names = ([_label(r.stage) for r in rows] + [f"lost after {_label(r.stage)}" for r in rows[:-1]]
             + [f"still deciding after {_label(r.stage)}" for r in rows[:-1]])
    links = []
    for i, row in enumerate(rows[:-1]):  # the last stage has nowhere further to go: nobody is lost there
        for target, patients in ((i + 1, row.reached_next), (len(rows) + i, row.lost), (len(rows) + n + i, row.in_progress)):
            if patients:
                links.append((i, target, patients))
    return names, links


def sankey_chart(rows: list[FunnelRow]) -> go.Figure:
    """Stage to next stage, and from every stage the patients lost and those still deciding."""
    names, links = sankey_links(rows)
    source, target, value = ([link[k] for link in links] for k in range(3))
    lost, pending = len(rows), 2 * len(rows) - 1
    colours = [_BLUE] * len(rows) + [_RED] * (len(rows) - 1) + [_GREY] * (len(rows) - 1)
    link_colours = ["rgba(154,165,177,0.45)" if t >= pending else "rgba(208,87,79,0.35)" if t >= lost
                    else "rgba(59,111,182,0.35)" for t in target]
    figure = go.Figure(go.Sankey(
        arrangement="snap", valueformat=",d",
        node={"label": names, "color": colours, "pad": 18, "thickness": 16},
        link={"source": source, "target": target, "value": value, "color": link_colours}))
    figure.update_layout(**_LAYOUT)
    return figure


def funnel_chart(rows: list[FunnelRow]) -> go.Figure:
    figure = go.Figure(go.Funnel(y=[_label(r.stage) for r in rows], x=[r.entered for r in rows],
                                 textinfo="value+percent initial", marker={"color": _BLUE}))
    figure.update_layout(**_LAYOUT)
    return figure


def _positions(journey_map: JourneyMap, order: list[str]) -> dict[str, tuple[float, float]]:
    """Stages left to right in journey order, start at the far left, exit at the far right."""
    known = [n for n in order if n in journey_map.graph]
    others = sorted(n for n in journey_map.graph if n not in known and n not in (START, EXIT))
    columns = known + others
    positions = {name: (float(i + 1), (i % 2) * 0.6) for i, name in enumerate(columns)}
    positions[START] = (0.0, 0.3)
    positions[EXIT] = (float(len(columns) + 1), 0.3)
    return positions


def journey_graph_chart(journey_map: JourneyMap, order: list[str]) -> go.Figure:
    """The graph as arrows between stage boxes; arrow width grows with the share of the
    source's patients that take it, and hovering an arrow's middle gives its numbers."""
    g = journey_map.graph
    pos = _positions(journey_map, order)
    figure = go.Figure()
    mid_x, mid_y, mid_text = [], [], []
    for source, target, data in g.edges(data=True):
        (x0, y0), (x1, y1) = pos[source], pos[target]
        bend = 0.25 if x1 < x0 else 0.0  # backward edges arc above
        mx, my = (x0 + x1) / 2, (y0 + y1) / 2 + bend
        colour = _RED if target == EXIT else _GREY if x1 < x0 else _BLUE
        figure.add_annotation(x=x1, y=y1, ax=mx, ay=my, xref="x", yref="y", axref="x", ayref="y",
                              showarrow=True, arrowhead=2, arrowwidth=1 + 5 * data["share"],
                              arrowcolor=colour, opacity=0.55, standoff=14)
        figure.add_trace(go.Scatter(x=[x0, mx], y=[y0, my], mode="lines", hoverinfo="skip",
                                    line={"color": colour, "width": 1 + 5 * data["share"]},
                                    opacity=0.55, showlegend=False))
        mid_x.append(mx), mid_y.append(my)
        seconds = data.get("median_seconds")
        when = f"<br>usually {duration(seconds)} later" if seconds is not None else ""
        mid_text.append(f"{_label(source)} → {_label(target)}<br>{data['customers']:,} patients "
                        f"({data['share']:.0%} of {_label(source)}){when}")
    figure.add_trace(go.Scatter(x=mid_x, y=mid_y, mode="markers", hovertext=mid_text, hoverinfo="text",
                                marker={"size": 6, "color": "rgba(0,0,0,0.15)"}, showlegend=False))
    names = list(g.nodes)
    figure.add_trace(go.Scatter(
        x=[pos[n][0] for n in names], y=[pos[n][1] for n in names], mode="markers+text",
        text=[f"<b>{_label(n)}</b><br>{g.nodes[n]['customers']:,}" for n in names], textposition=["top center" if pos[n][1] > 0.3 else "bottom center" for n in names],
        hoverinfo="text", hovertext=[f"{_label(n)}: {g.nodes[n]['customers']:,} patients" for n in names],
        marker={"size": 26, "color": [_GREY if n in (START, EXIT) else _BLUE for n in names]},
        showlegend=False))
    figure.update_layout(**_LAYOUT, xaxis={"visible": False}, yaxis={"visible": False, "range": [-0.6, 1.2]})
    return figure


def deviation_chart(rows: tuple[SummaryRow, ...]) -> go.Figure:
    """One bar per rule of the ideal journey: the share of patients where reality differs."""
    shown = [r for r in rows if r.deviated]
    kinds = {"missing_step": "missing", "out_of_order": "out of order", "missed_deadline": "deadline"}
    figure = go.Figure(go.Bar(
        x=[r.share for r in shown], y=[f"{r.label} ({kinds[r.kind]})" for r in shown], orientation="h",
        marker={"color": [_RED if r.kind == "missed_deadline" else _BLUE for r in shown]},
        text=[f"{r.share:.0%} ({r.deviated:,} of {r.expected:,})" for r in shown], textposition="auto",
        hoverinfo="text"))
    figure.update_layout(**_LAYOUT, xaxis={"tickformat": ".0%", "range": [0, 1]},
                         yaxis={"autorange": "reversed"})
    return figure


def retention_chart(cohorts: list[dict[str, Any]], period: str) -> go.Figure:
    """The share of each cohort back in each later period (all cohorts pooled, weighted by
    size; a period counts only the cohorts that have reached it)."""
    width = max((len(c["retained"]) for c in cohorts), default=0)
    shares = []
    for k in range(1, width):
        seen = [c for i, c in enumerate(cohorts) if c["size"] and len(cohorts) - 1 - i >= k]
        total = sum(c["size"] for c in seen)
        shares.append(sum(c["retained"][k] for c in seen) / total if total else None)
    figure = go.Figure(go.Scatter(x=[f"{period} {k}" for k in range(1, width)], y=shares, mode="lines+markers",
                                  line={"color": _BLUE}, hovertemplate="%{y:.1%}<extra></extra>"))
    figure.update_layout(**_LAYOUT, yaxis={"tickformat": ".0%", "rangemode": "tozero"})
    return figure


def lifecycle_chart(periods: list[dict[str, Any]]) -> go.Figure:
    """New, returning and resurrecting patients above the axis, dormant below (PostHog's picture)."""
    x = [p["start"] for p in periods]
    figure = go.Figure([
        go.Bar(name="new", x=x, y=[p["new"] for p in periods], marker={"color": _BLUE}),
        go.Bar(name="returning", x=x, y=[p["returning"] for p in periods], marker={"color": "#5a9e6f"}),
        go.Bar(name="resurrecting", x=x, y=[p["resurrecting"] for p in periods], marker={"color": "#e0a33a"}),
        go.Bar(name="dormant", x=x, y=[-p["dormant"] for p in periods], marker={"color": _RED}),
    ])
    figure.update_layout(**_LAYOUT, barmode="relative")
    return figure
