"""Reading the analysis tables the derive wrote (``stage_funnel``, ``failure_points``,
``failure_reasons``, ``clinic_metrics``) from a snapshot, as ``journey failures`` and
``journey metrics`` show them."""

from __future__ import annotations

from typing import Any

import duckdb

from journey.projections.publish import require_table

__all__ = ["Table", "clinic_metrics", "failure_tables"]

Table = tuple[list[str], list[tuple[Any, ...]]]
"""Column names and rows."""

FAILURE_TABLES = ("stage_funnel", "failure_points", "failure_reasons")


def _read(con: duckdb.DuckDBPyConnection, table: str, where: str = "") -> Table:
    require_table(con, table)
    cursor = con.execute(f"SELECT * FROM {table}{where}")
    return [d[0] for d in cursor.description], cursor.fetchall()


def failure_tables(con: duckdb.DuckDBPyConnection, *, show_all: bool = False) -> dict[str, Table]:
    """The stage funnel, the points of failure (only the significant ones unless
    ``show_all``) and the reasons, by table name."""
    return {table: _read(con, table, " WHERE significant" if table == "failure_points" and not show_all else "")
            for table in FAILURE_TABLES}


def clinic_metrics(con: duckdb.DuckDBPyConnection) -> Table:
    return _read(con, "clinic_metrics")
