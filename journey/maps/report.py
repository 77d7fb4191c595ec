"""The clinic report: one self-contained HTML file a manager opens in a browser.

plotly.js is inlined (no CDN, no server: it opens offline, from an email attachment
too); the charts carry only aggregates from ``journey.maps.clinic``, the stage map and
the ideal-journey comparison. Key numbers sit in elements with ``data-metric`` so a
test (and anyone) can check them against the projection.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata, resources
from pathlib import Path
from string import Template
from typing import Any

import duckdb
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from journey.maps import charts, clinic
from journey.maps import format as fmt
from journey.maps.deviations import IdealResult, compare
from journey.maps.filters import JourneyFilter
from journey.maps.graph import build_map
from journey.maps.ideal import IdealJourney, load_ideal

__all__ = ["render_report", "write_report"]

_NOT_AVAILABLE = '<p class="missing">Not available in this projection (the table {table} is not there yet).</p>'
_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}


def _figure(figure: go.Figure) -> str:
    return figure.to_html(full_html=False, include_plotlyjs=False, config=_CONFIG)


def _raw(value: Any, unit: str | None = None) -> str:
    if value is None:
        return ""
    if unit == "count" or isinstance(value, int):
        return f"{int(value)}"
    return f"{value!r}"


def _metric(key: str, value: Any, shown: str, name: str, unit: str | None = None) -> str:
    return (f'<div class="metric"><div class="value" data-metric="{key}" data-value="{html.escape(_raw(value, unit))}">'
            f'{html.escape(shown)}</div><div class="name">{html.escape(name)}</div></div>')


@dataclass(frozen=True)
class Cell:
    """A table cell that carries its figure for checking: ``data-metric`` and the raw value."""

    key: str
    value: Any
    shown: str
    unit: str | None = None


_NAMES = {
    "new_patients": "new patients (came at least once)",
    "conversion": "of the people who got in touch came to a first visit",
    "no_show_rate": "of appointments that were due were missed without notice (no-show)",
    "repeat_rate": "of new patients came back for another visit",
    "revenue": "revenue (payments received)",
    "cost_per_new_patient": "advertising cost per new patient a paid channel brought",
}


def _metrics(head: clinic.Headline) -> str:
    parts = []
    for name, f in head.figures.items():
        note = " (no ad spend recorded, so this is not known)" if name == "cost_per_new_patient" and f.result is None else ""
        parts.append(_metric(name, f.result, fmt.figure(f.result, f.unit), _NAMES[name] + note, f.unit))
    return "".join(parts)


def _td(value: Any, numeric: bool) -> str:
    css = ' class="num"' if numeric else ""
    if isinstance(value, Cell):
        return (f'<td{css} data-metric="{html.escape(value.key)}" data-value="{html.escape(_raw(value.value, value.unit))}">'
                f"{html.escape(value.shown)}</td>")
    return f"<td{css}>{html.escape(str(value))}</td>"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: set[int]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_td(v, i in numeric) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _label(stage: str) -> str:
    return stage.replace("_", " ")


def _point_cells(p: clinic.FailurePoint) -> list[Any]:
    key = f"failure_points:{p.stage}:{p.dimension}:{p.value}:"
    return [f"{_label(p.stage)} → {_label(p.next_stage)}", p.dimension, p.value,
            Cell(key + "entered", p.entered, f"{p.entered:,}", "count"),
            Cell(key + "failed", p.failed, f"{p.failed:,}", "count"),
            Cell(key + "failure_rate", p.failure_rate, f"{p.failure_rate:.0%}"),
            f"{p.overall_rate:.0%}", "" if p.lift is None else f"{p.lift:.1f}×",
            fmt.significance(None, p.entered, p.q_value)]


_POINT_HEADERS = ["where", "owner", "who", "patients", "lost", "lost (their share)", "rest of the stage",
                  "times as often", "how sure"]


def _failures(con: duckdb.DuckDBPyConnection) -> str:
    points = clinic.failure_points(con)
    if points is None:
        return _NOT_AVAILABLE.format(table="failure_points")
    owners = (_table(_POINT_HEADERS, [_point_cells(p) for p in points], {3, 4, 5, 6, 7}) if points else
              "<p>No owner loses patients more often than the rest of their stage.</p>")
    better = clinic.failure_points(con, better=True) or []
    learn = ("" if not better else "<h3>Doing better than the rest: what to learn from</h3>"
             + _table(_POINT_HEADERS, [_point_cells(p) for p in better], {3, 4, 5, 6, 7}))
    reasons = clinic.failure_reasons(con)
    why = (_NOT_AVAILABLE.format(table="failure_reasons") if reasons is None else
           _table(["stage", "what happened last", "patients lost", "share"],
                  [(_label(s), r, f"{f:,}", f"{sh:.0%}") for s, r, f, sh in reasons], {2, 3}))
    return owners + learn + "<h3>Why patients were lost</h3>" + why


def _attention(con: duckdb.DuckDBPyConnection) -> str:
    """The significant points of failure in one sentence each, the costliest first."""
    points = [p for p in clinic.failure_points(con, limit=5) or [] if p.significant]
    if not points:
        return "<p>No owner loses patients significantly more often than the rest of their stage.</p>"
    items = "".join(
        f"<li><b>{html.escape(p.value)}</b> ({html.escape(p.dimension)}), {_label(p.stage)} → "
        f"{_label(p.next_stage)}: {p.failed:,} of {p.entered:,} patients did not move on in time "
        f"({p.failure_rate:.0%} against {p.overall_rate:.0%} for the rest; "
        f"{html.escape(fmt.significance(p.lift, p.entered, p.q_value))}).</li>" for p in points)
    return f"<ol class=\"attention\">{items}</ol>"


def _owner_words(owners: Sequence[str]) -> str:
    """``["branch", "administrator"]`` -> ``branches and administrators``."""
    words = [o + ("es" if o.endswith("ch") else "s") for o in owners]
    if not words:
        return "nobody named in the stage model"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _changes(con: duckdb.DuckDBPyConnection) -> str:
    """Each stage's latest decided month against the one before, the significant first."""
    changes = clinic.stage_changes(con)
    if changes is None:
        return _NOT_AVAILABLE.format(table="stage_changes")
    if not changes:
        return "<p>No stage has two decided months to compare yet.</p>"
    significant = [c for c in changes if c.significant]
    lead = ("<p>No stage's loss rate changed by more than chance would explain, after correcting for "
            "every comparison this report makes (Benjamini-Hochberg).</p>" if not significant else "")
    rows = [(_label(c.stage) + " → " + _label(c.next_stage),
             f"{c.month:%b %Y} vs {c.previous_month:%b %Y}",
             Cell(f"stage_changes:{c.stage}:loss_rate", c.loss_rate, f"{c.loss_rate:.0%} of {c.entered:,}"),
             Cell(f"stage_changes:{c.stage}:previous_loss_rate", c.previous_loss_rate,
                  f"{c.previous_loss_rate:.0%} of {c.previous_entered:,}"),
             Cell(f"stage_changes:{c.stage}:change_points", c.change_points, f"{c.change_points:+.0f} points"),
             ("worse: " if c.significant and c.worse else "better: " if c.significant else "")
             + fmt.significance(None, c.entered + c.previous_entered, c.q_value),
             _owner_words(c.owners)) for c in changes]
    return lead + _table(["step", "month entered vs the month before", "lost", "lost the month before", "change",
                          "how sure", "owned by"], rows, {2, 3, 4})


def _funnel_table(rows: list[clinic.FunnelRow]) -> str:
    cells = []
    for i, r in enumerate(rows):
        key = f"stage_funnel:{r.stage}:"
        last = i == len(rows) - 1
        cells.append([_label(r.stage), Cell(key + "entered", r.entered, f"{r.entered:,}", "count"),
                      "" if last else Cell(key + "reached_next", r.reached_next, f"{r.reached_next:,}", "count"),
                      "" if last else Cell(key + "in_progress", r.in_progress, f"{r.in_progress:,}", "count"),
                      "" if last else Cell(key + "lost", r.lost, f"{r.lost:,}", "count"),
                      "" if last or r.conversion_within_sla is None else
                      Cell(key + "conversion_within_sla", r.conversion_within_sla, fmt.share(r.conversion_within_sla)),
                      "" if last else fmt.duration(r.median_seconds_to_next)])
    table = _table(["stage", "reached", "moved on", "still deciding", "lost", "move on in time (estimated)",
                    "usual time to move on"], cells, {1, 2, 3, 4, 5})
    said = [f"<li>{fmt.share(r.conversion_within_sla)} of the patients who reached {_label(r.stage)} get to "
            f"{_label(nxt.stage)} within {fmt.duration(r.sla_seconds)}"
            + (f", counting the {r.in_progress:,} still deciding" if r.in_progress else "") + ".</li>"
            for r, nxt in zip(rows, rows[1:]) if r.conversion_within_sla is not None and r.sla_seconds]
    return table + (f'<ul class="estimates">{"".join(said)}</ul>' if said else "")


_SCORECARD_HEADERS = {"first_visit_patients": "first-visit patients", "plan_acceptance": "plans accepted",
                      "repeat_visits_per_new_patient": "repeat visits per patient",
                      "lifetime_revenue": "revenue per patient", "review_rating": "review rating",
                      "explained_problem": "explained the problem", "explained_complications": "… complications",
                      "explained_guarantees": "… guarantees", "price_justified": "price felt justified",
                      "unanswered_negative_reviews": "negative reviews unanswered"}
_CHANNEL_HEADERS = {"leads": "leads", "new_patients": "new patients", "conversion": "became patients",
                    "cost_per_lead": "cost per lead", "cost_per_call": "cost per caller",
                    "cost_per_booking": "cost per booking", "cost_per_new_patient": "cost per new patient",
                    "lifetime_revenue": "revenue per patient", "roas": "revenue per ruble spent"}


def _breakdown(con: duckdb.DuckDBPyConnection, dimension: str, headers: dict[str, str], first: str) -> str:
    table = clinic.breakdown(con, dimension, tuple(headers))
    if not table:
        return '<p class="missing">No figures for this yet.</p>'
    rows = []
    for value, figures in table.items():
        row: list[Any] = [value]
        for metric in headers:
            f = figures.get(metric)
            row.append("" if f is None else Cell(f"clinic_metrics:{metric}:{dimension}:{value}", f.result,
                                                 fmt.figure(f.result, f.unit), f.unit))
        rows.append(row)
    return _table([first, *headers.values()], rows, set(range(1, len(headers) + 1)))


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


def _base(base: Mapping[str, Any] | None) -> str:
    """Working the base: retention, lifecycle, worklist compliance and the measured recall
    outreach, from what ``journey.services.report`` computed (plain data)."""
    if not base:
        return '<p class="explain">Not computed for this report.</p>'
    parts = []
    retention = base["retention"]
    parts.append(f"<h3>Patients back after their first visit, by {retention['period']}</h3>"
                 f"{_figure(charts.retention_chart(retention['cohorts'], retention['period']))}")
    lifecycle = base["lifecycle"]
    parts.append(f"<h3>Active patients per {lifecycle['period']}: new, returning, resurrecting, dormant</h3>"
                 f"{_figure(charts.lifecycle_chart(lifecycle['periods']))}")
    rates = base["tasks"]
    parts.append("<h3>Worklists: were the tasks done?</h3>" + (_table(
        ["rule", "owner", "tasks", "done", "overdue", "still due", "done of decided"],
        [(r["rule"].replace("_", " "), r["owner"], f"{r['tasks']:,}", f"{r['done']:,}", f"{r['overdue']:,}",
          f"{r['due']:,}", fmt.share(r["done_rate"])) for r in rates], {2, 3, 4, 5, 6})
        if rates else '<p class="explain">No tasks in this projection.</p>'))
    found = (base.get("portraits") or {}).get("portraits") or []
    if found:
        parts.append("<h3>Typical patients</h3>" + _table(
            ["portrait", "patients", "share", "revenue share", "per patient", "brought by", "districts"],
            [(p["title"], f"{p['patients']:,}", fmt.share(p["patient_share"]), fmt.share(p["revenue_share"]),
              f"{p['revenue_per_patient']:,.0f}", ", ".join(f"{c} {n:,}" for c, n in p["channels"]),
              ", ".join(p["districts"])) for p in found], {1, 2, 3, 4}))
    outreach = base.get("outreach")
    if outreach:
        contacted, held = outreach["contacted"], outreach["held_out"]
        interval = outreach["interval_95"]
        verdict = ("not measurable yet" if interval is None else
                   f"{outreach['uplift']:+.1%} (95% interval {interval[0]:+.1%} to {interval[1]:+.1%}: "
                   f"{'could be chance' if interval[0] <= 0 <= interval[1] else 'not chance'})")
        small = " Few held-out patients: the interval is wide." if held["small"] else ""
        parts.append(
            f"<h3>Recall outreach, measured</h3><p>Of {contacted['customers']:,} patients sent a recall, "
            f"{fmt.share(contacted['rate'])} booked or visited within {fmt.duration(outreach['within_seconds'])}"
            f"; of {held['customers']:,} held out on purpose, {fmt.share(held['rate'])}. "
            f"Uplift: {verdict}.{small}</p>")
    return "\n".join(parts)


def render_report(con: duckdb.DuckDBPyConnection, ideal: IdealJourney | None = None,
                  min_edge_share: float = 0.05, progress: Callable[[int], None] | None = None,
                  base: Mapping[str, Any] | None = None) -> str:
    """The whole page as a string (every number computed on ``con`` now; ``base`` is the
    section on working the patient base, computed by the caller)."""
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
        "funnel_table": _funnel_table(stages),
        "attention": _attention(con),
        "changes": _changes(con),
        "scorecard": _breakdown(con, "doctor", _SCORECARD_HEADERS, "doctor (of the first visit)"),
        "channels": _breakdown(con, "channel", _CHANNEL_HEADERS, "channel (first touch)"),
        "funnel_source": ("From the clinic's stage funnel." if from_contract else
                          "Computed from the touches (this projection has no stage funnel yet)."),
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
        "base": _base(base),
        "version": metadata.version("journey"),
    }
    step(1)
    values["seconds"] = f"{time.perf_counter() - started:.1f}"
    template = resources.files("journey.maps").joinpath("report.html").read_text("utf-8")
    return Template(template).substitute(values)


def write_report(con: duckdb.DuckDBPyConnection, out: Path, ideal: IdealJourney | None = None,
                 min_edge_share: float = 0.05, progress: Callable[[int], None] | None = None,
                 base: Mapping[str, Any] | None = None) -> Path:
    """Render and write the page; returns its path."""
    page = render_report(con, ideal, min_edge_share, progress, base)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
