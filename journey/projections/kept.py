"""The one way a derive writes a table it keeps per customer."""

from __future__ import annotations

import duckdb

__all__ = ["replace_customers"]


def replace_customers(con: duckdb.DuckDBPyConnection, table: str, select: str, dirty: str | None) -> None:
    """Build ``table`` whole from ``select`` (``dirty`` None: a full derive), or replace
    the rows of the customers listed in the table named ``dirty`` by what ``select`` gives
    for them (an incremental derive: ``select`` yields those customers' rows only)."""
    if dirty is None:
        con.execute(f"CREATE OR REPLACE TABLE {table} AS {select}")
        return
    con.execute(f"DELETE FROM {table} WHERE customer_id IN (SELECT customer_id FROM {dirty})")
    con.execute(f"INSERT INTO {table} BY NAME {select}")
