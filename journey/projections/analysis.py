"""The analysis tables written with every derive, so every published snapshot has them."""

from __future__ import annotations

import duckdb

from journey.projections.failure import TABLES as FAILURE_TABLES, write_failure_tables
from journey.projections.metrics import write_clinic_metrics
from journey.projections.stage_model import StageModel

__all__ = ["write_analysis_tables"]


def write_analysis_tables(con: duckdb.DuckDBPyConnection, model: StageModel, dirty: str | None = None,
                          touches: str = "touchpoints", *, compare: bool = True) -> tuple[str, ...]:
    """Points of failure and clinic metrics from ``touchpoints``/``customers`` (derived
    first); with ``dirty`` (a table of customer ids) the per-customer parts of the points
    of failure and of the clinic metrics are derived again for those customers only, from
    ``touches``; a failure table is kept when its counts and the data's end leave it as it
    is, and with ``compare`` (and ``dirty``) ``clinic_metrics`` is kept when its inputs did not change.
    Returns the tables written."""
    failure = FAILURE_TABLES if write_failure_tables(con, model, dirty, touches) else ()
    metrics = ("clinic_metrics",) if write_clinic_metrics(con, dirty, touches, compare=compare) else ()
    return (*failure, *metrics)
