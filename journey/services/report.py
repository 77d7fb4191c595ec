"""``journey report`` and the end of ``journey demo``: the clinic report written from
the published snapshot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from journey.maps.ideal import load_ideal
from journey.maps.report import write_report
from journey.projections.publish import open_snapshot

__all__ = ["REPORT_PARTS", "write_clinic_report"]

REPORT_PARTS = 5
"""How many steps ``write_clinic_report`` reports progress for."""


def write_clinic_report(snapshot: Path, out: Path, model: str | None = None, min_share: float = 0.05,
                        progress: Callable[[int], object] | None = None) -> Path:
    """Write the clinic report (one offline HTML file) to ``out`` from the snapshot;
    ``model`` is an ideal-journey TOML file (default: the shipped clinic journey)."""
    ideal = load_ideal(model)
    with open_snapshot(snapshot) as con:
        return write_report(con, out, ideal, min_share, progress or (lambda _n: None))
