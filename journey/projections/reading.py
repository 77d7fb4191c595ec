"""The one reader of the analysis tables written at derive time (``stage_funnel``,
``failure_points``, ``failure_reasons``, ``clinic_metrics``...).

The report, ``journey metrics``, ``journey failures`` and ``journey funnel`` all read
through here, so a figure shown anywhere is the same row of the same table.
"""

from __future__ import annotations

from typing import Any

import duckdb

from journey.errors import ProjectionError
from journey.projections.metrics import CLINIC_METRICS_SQL

__all__ = ["FAILURE_TABLES", "clinic_metric", "columns_of", "failure_tables", "has_table", "STAGE_FUNNEL_SUMMARY_SQL", "funnel_lines", "metric_rows", "metrics_source", "require_table",
           "rows_as_dicts"]

FAILURE_TABLES = ("stage_funnel", "failure_points", "failure_reasons")


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the projection (not a temporary table) has ``name``."""
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ? "
                            "AND table_catalog = current_database() AND table_schema = current_schema()",
                            [name]).fetchone()[0])


def columns_of(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    """The column names of one of the projection's tables (empty when it has none)."""
    return {c for (c,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
        "AND table_catalog = current_database() AND table_schema = current_schema()", [table]).fetchall()}


def require_table(con: duckdb.DuckDBPyConnection, name: str) -> None:
    if not has_table(con, name):
        raise ProjectionError(f"the projection has no {name} table (built by an older version); "
                              "run `journey rederive`")


def _select(con: duckdb.DuckDBPyConnection, sql: str, parameters: list[Any] | None = None
            ) -> tuple[list[str], list[tuple[Any, ...]]]:
    cursor = con.execute(sql, parameters or [])
    return [d[0] for d in cursor.description], cursor.fetchall()


def rows_as_dicts(columns: list[str], rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in rows]


def failure_tables(con: duckdb.DuckDBPyConnection, show_all: bool = False
                   ) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """The stage funnel, the points of failure (only the significant ones, worst first,
    unless ``show_all``), the reasons and what changed, each as (columns, rows)."""
    tables = {}
    for table in FAILURE_TABLES:
        require_table(con, table)
    tables["stage_funnel"] = _select(con, "SELECT * FROM stage_funnel ORDER BY stage_order")
    where = "" if show_all else " WHERE significant"
    tables["failure_points"] = _select(
        con, f"SELECT * FROM failure_points{where} "
             "ORDER BY significant DESC, failed - entered * overall_rate DESC, stage, dimension, value")
    tables["failure_reasons"] = _select(con, "SELECT * FROM failure_reasons")
    if has_table(con, "stage_changes"):  # what changed (a projection of schema 4 or later)
        tables["stage_changes"] = _select(
            con, "SELECT * FROM stage_changes ORDER BY significant DESC, change_points DESC, stage")
    return tables


def metrics_source(con: duckdb.DuckDBPyConnection) -> str:
    """``clinic_metrics``, or its defining query on a projection written before it."""
    return "clinic_metrics" if "unit" in columns_of(con, "clinic_metrics") else f"({CLINIC_METRICS_SQL})"


def metric_rows(con: duckdb.DuckDBPyConnection) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Every row of ``clinic_metrics``."""
    require_table(con, "clinic_metrics")
    return _select(con, "SELECT * FROM clinic_metrics ORDER BY metric, dimension, value")


def clinic_metric(con: duckdb.DuckDBPyConnection, metric: str, dimension: str = "all",
                  value: str = "all") -> tuple[float | None, str | None]:
    """One metric's result and unit (None, None when the projection does not have it)."""
    row = con.execute("SELECT result, unit FROM clinic_metrics WHERE metric = ? AND dimension = ? AND value = ?",
                      [metric, dimension, value]).fetchone()
    return (None, None) if row is None else (row[0], row[1])


STAGE_FUNNEL_SUMMARY_SQL = ("SELECT stage, entered, reached_next, in_progress, lost FROM stage_funnel "
                            "ORDER BY stage_order")
"""The stage funnel as the demo prints it (the same rows the report draws)."""


def funnel_lines(rows: list[tuple[Any, ...]]) -> list[str]:
    """``contact      1,997 reached; 1,213 moved on, 7 still deciding, 777 lost`` per stage."""
    lines = []
    for stage, entered, reached, pending, lost in rows:
        tail = "" if reached is None else f"; {reached:,} moved on, {pending:,} still deciding, {lost:,} lost"
        lines.append(f"  {stage:>12} {entered:>7,} reached{tail}")
    return lines
