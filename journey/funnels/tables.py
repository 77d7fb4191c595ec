"""The analysis tables written with every derive, so every published snapshot has them."""

from __future__ import annotations

import duckdb

from journey.funnels.failure import write_failure_tables
from journey.funnels.metrics import write_clinic_metrics
from journey.projections.stage_model import StageModel

__all__ = ["ANALYSIS_TABLES", "write_analysis_tables"]

ANALYSIS_TABLES = ("stage_funnel", "failure_points", "failure_reasons", "stage_correlations", "clinic_metrics")


def write_analysis_tables(con: duckdb.DuckDBPyConnection, model: StageModel) -> None:
    """Points of failure and clinic metrics from ``touchpoints``/``customers`` (derived first)."""
    write_failure_tables(con, model)
    write_clinic_metrics(con)
