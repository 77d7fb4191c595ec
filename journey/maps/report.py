"""The clinic report: one self-contained HTML file a manager opens in a browser.

plotly.js is inlined (no CDN, no server: it opens offline, from an email attachment
too); the charts carry only aggregates from ``journey.maps.clinic``, the stage map and
the ideal-journey comparison. Key numbers sit in elements with ``data-metric`` so a
test (and anyone) can check them against the projection.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib import metadata, resources
from pathlib import Path
from string import Template
from typing import Any

import duckdb
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from journey.maps import charts, clinic
from journey.maps.deviations import IdealResult, compare
from journey.maps.filters import JourneyFilter
from journey.maps.graph import build_map
from journey.maps.ideal import IdealJourney, load_ideal

__all__ = ["render_report", "write_report"]

_NOT_AVAILABLE = '<p class="missing">Not available in this projection (the table {table} is not there yet).</p>'
_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}


def _figure(figure: go.Figure) -> str:
    return figure.to_html(full_html=False, include_plotlyjs=False, config=_CONFIG)


def _metric(key: str, value: Any, shown: str, name: str) -> str:
    raw = "" if value is None else f"{value}"
    return (f'<div class="metric"><div class="value" data-metric="{key}" data-value="{html.escape(raw)}">'
            f'{html.escape(shown)}</div><div class="name">{html.escape(name)}</div></div>')


def _money(value: float | None, currency: str | None) -> str:
    return "not known" if value is None else f"{value:,.0f} {currency or ''}".strip()


def _metrics(h: clinic.Headline) -> str:
    spend = ("" if h.cost_per_new_patient is not None
             else " (no ad spend recorded, so this is not known)")
    return "".join([
        _metric("new_patients", h.new_patients, f"{h.new_patients:,}", "new patients (came at least once)"),
        _metric("conversion", round(h.conversion, 4), f"{h.conversion:.1%}",
                f"of {h.customers:,} people who got in touch came to a first visit"),
        _metric("no_show_rate", round(h.no_show_rate, 4), f"{h.no_show_rate:.1%}",
                "of booked appointments were missed without notice (no-show)"),
        _metric("repeat_rate", round(h.repeat_rate, 4), f"{h.repeat_rate:.1%}",
                "of new patients came back for another visit"),
        _metric("revenue", round(h.revenue, 2), _money(h.revenue, h.currency), "revenue (payments received)"),
        _metric("cost_per_new_patient",
                None if h.cost_per_new_patient is None else round(h.cost_per_new_patient, 2),
                _money(h.cost_per_new_patient, h.currency), "advertising cost per new patient" + spend),
    ])


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: set[int]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(
        f'<td class="num">{html.escape(str(v))}</td>' if i in numeric else f"<td>{html.escape(str(v))}</td>"
        for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _failures(con: duckdb.DuckDBPyConnection) -> str:
    points = clinic.failure_points(con)
    if points is None:
        return _NOT_AVAILABLE.format(table="failure_points")
    owners = _table(["where", "owner", "who", "patients", "lost", "lost (their share)", "clinic", "times as often"],
                    [(f"{s} → {n}", d, v, f"{e:,}", f"{f:,}", f"{r:.0%}", f"{o:.0%}", f"{lift:.1f}×")
                     for s, n, d, v, e, f, r, o, lift, _ in points], {3, 4, 5, 6, 7})
    reasons = clinic.failure_reasons(con)
    why = (_NOT_AVAILABLE.format(table="failure_reasons") if reasons is None else
           _table(["stage", "what happened last", "patients lost", "share"],
                  [(s, r, f"{f:,}", f"{sh:.0%}") for s, r, f, sh in reasons], {2, 3}))
    return owners + "<h3>Why patients were lost</h3>" + why


def _compliance(con: duckdb.DuckDBPyConnection) -> str:
    rows = clinic.compliance(con)
    if rows is None:
        return _NOT_AVAILABLE.format(table="consent_violations")
    total = sum(r[3] for r in rows)
    summary = f'<p><b data-metric="consent_violations" data-value="{total}">{total:,}</b> messages without consent.</p>'
    return summary + _table(["channel", "purpose", "problem", "messages", "patients"],
                            [(c, p, r, f"{m:,}", f"{n:,}") for c, p, r, m, n in rows], {3, 4})


def _ideal_table(result: IdealResult) -> str:
    kinds = {"missing_step": "step missing", "out_of_order": "out of order", "missed_deadline": "deadline missed"}
    return _table(["rule", "what went wrong", "owner", "patients concerned", "different from ideal", "share"],
                  [(r.label, kinds[r.kind], r.owner, f"{r.expected:,}", f"{r.deviated:,}", f"{r.share:.0%}")
                   for r in result.rows], {3, 4, 5})


def _period(con: duckdb.DuckDBPyConnection) -> str:
    first, last = con.execute("SELECT min(occurred_at), max(occurred_at) FROM touchpoints "
                              "WHERE customer_id IS NOT NULL").fetchone()
    return "No touches yet" if first is None else f"Touches from {first:%d %b %Y} to {last:%d %b %Y}"


def render_report(con: duckdb.DuckDBPyConnection, ideal: IdealJourney | None = None,
                  min_edge_share: float = 0.05, progress: Callable[[int], None] | None = None) -> str:
    """The whole page as a string (every number computed on ``con`` now)."""
    started = time.perf_counter()
    step = progress or (lambda _n: None)
    head = clinic.headline(con)
    step(1)
    stages, from_contract = clinic.funnel(con)
    step(1)
    stage_map = build_map(con, "stage", JourneyFilter(min_edge_share=min_edge_share))
    step(1)
    deviations = compare(con, ideal or load_ideal())
    step(1)
    hidden = "" if min_edge_share <= 0 else (
        f" Arrows taken by fewer than {min_edge_share:.0%} of a stage's patients are hidden to keep the map readable.")
    values = {
        "plotly_js": get_plotlyjs(),
        "period": html.escape(_period(con)),
        "built": datetime.now(UTC).strftime("%d %b %Y %H:%M UTC"),
        "metrics": _metrics(head),
        "sankey": _figure(charts.sankey_chart(stages)),
        "funnel": _figure(charts.funnel_chart(stages)),
        "funnel_source": ("From the clinic's stage funnel." if from_contract else
                          "A patient counts at a stage once their journey got at least that far."),
        "graph": _figure(charts.journey_graph_chart(stage_map, clinic.stage_names(con))),
        "graph_note": hidden,
        "failures": _failures(con),
        "ideal_name": html.escape(deviations.model.name),
        "ideal_chart": _figure(charts.deviation_chart(deviations.rows)),
        "ideal_table": _ideal_table(deviations),
        "deviating": f'<b data-metric="ideal_deviating" data-value="{deviations.deviating}">{deviations.deviating:,}</b>',
        "in_scope": f"{deviations.customers:,}",
        "deviating_share": f"{deviations.deviating / deviations.customers:.0%}" if deviations.customers else "0%",
        "compliance": _compliance(con),
        "version": metadata.version("journey"),
    }
    step(1)
    values["seconds"] = f"{time.perf_counter() - started:.1f}"
    template = resources.files("journey.maps").joinpath("report.html").read_text("utf-8")
    return Template(template).substitute(values)


def write_report(con: duckdb.DuckDBPyConnection, out: Path, ideal: IdealJourney | None = None,
                 min_edge_share: float = 0.05, progress: Callable[[int], None] | None = None) -> Path:
    """Render and write the page; returns its path."""
    page = render_report(con, ideal, min_edge_share, progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
