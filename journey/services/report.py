"""``journey report`` and the end of ``journey demo``: the clinic report written from
the published snapshot, with the section on working the patient base (retention,
lifecycle, worklist compliance, the measured recall outreach)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from journey.base.outreach import outreach
from journey.base.portraits import portraits
from journey.base.worklists import load_worklists, task_rates, tasks
from journey.cohorts.lifecycle import lifecycle
from journey.cohorts.periods import Calendar, parse_event
from journey.cohorts.retention import retention
from journey.errors import JourneyError
from journey.maps.ideal import load_ideal
from journey.maps.report import write_report
from journey.projections.publish import open_snapshot

__all__ = ["REPORT_PARTS", "base_section", "write_clinic_report"]

REPORT_PARTS = 6
"""How many steps ``write_clinic_report`` reports progress for."""


def base_section(con: duckdb.DuckDBPyConnection, worklists: Path | None = None,
                 timezone: str = "UTC") -> dict[str, Any] | None:
    """The report's "working the base" figures as plain data; None on a projection
    without touches."""
    if not con.execute("SELECT count(*) FROM touchpoints").fetchone()[0]:  # type: ignore[index]
        return None
    month = Calendar("month", timezone)
    model = load_worklists(worklists)
    section: dict[str, Any] = {
        "retention": retention(con, parse_event("visit"), parse_event("visit"), month, 12, first_time=True).to_dict(),
        "lifecycle": lifecycle(con, parse_event("visit"), month, periods=12).to_dict(),
    }
    tasks(con, model)
    section["tasks"] = task_rates(con)
    section["portraits"] = portraits(con).to_dict() if _has_customers(con) else None
    try:
        section["outreach"] = outreach(con, model, "recall", "60d").to_dict() if "recall" in model.rules else None
    except JourneyError:
        section["outreach"] = None
    return section


def _has_customers(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute("SELECT count(*) FROM customers WHERE visits > 0").fetchone()[0])  # type: ignore[index]


def write_clinic_report(snapshot: Path, out: Path, model: str | None = None, min_share: float = 0.05,
                        progress: Callable[[int], object] | None = None, worklists: Path | None = None) -> Path:
    """Write the clinic report (one offline HTML file) to ``out`` from the snapshot;
    ``model`` is an ideal-journey TOML file (default: the shipped clinic journey)."""
    ideal = load_ideal(model)
    step = progress or (lambda _n: None)
    with open_snapshot(snapshot) as con:
        base = base_section(con, worklists)
        step(1)
        return write_report(con, out, ideal, min_share, step, base)
