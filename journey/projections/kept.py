"""The one way a derive writes a table it keeps per customer, and the running counts it
keeps over those tables."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

__all__ = ["RunningCount", "customers_in", "differ", "replace_customers"]


def replace_customers(con: duckdb.DuckDBPyConnection, table: str, select: str, dirty: str | None,
                      keep: str | None = None) -> None:
    """Build ``table`` whole from ``select`` (``dirty`` None: a full derive), or replace
    the rows of the customers listed in the table named ``dirty`` by what ``select`` gives
    for them (an incremental derive: ``select`` yields those customers' rows only). With
    ``keep``, the replaced rows stay in the temporary tables ``{keep}_before`` and
    ``{keep}_after`` (what running counts and deltas read, instead of scanning ``table``
    for the customers again; ``_before`` has their row ids too, ``row_id``), and the old
    rows are deleted by row id: one scan of the table, not one per reader."""
    if dirty is None:
        con.execute(f"CREATE OR REPLACE TABLE {table} AS {select}")
        return
    mine = f"customer_id IN (SELECT customer_id FROM {dirty})"
    if keep is None:
        con.execute(f"DELETE FROM {table} WHERE {mine}")
        con.execute(f"INSERT INTO {table} BY NAME {select}")
        return
    con.execute(f"CREATE OR REPLACE TEMP TABLE {keep}_before AS SELECT rowid AS row_id, * FROM {table} WHERE {mine}")
    con.execute(f"DELETE FROM {table} WHERE rowid IN (SELECT row_id FROM {keep}_before)")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {keep}_after AS {select}")
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {keep}_after")


def customers_in(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """A row belongs to a customer listed in ``table`` (touches of nobody: NULL listed), as
    SQL for the table as it is now. NULL is asked for only when listed: written as one
    condition (``OR customer_id IS NULL AND EXISTS (...)``), DuckDB joined every row to the
    subquery with a nested loop (13.5 against 8.2 ms for 990 customers at 1M touches)."""
    nobody = con.execute(f"SELECT bool_or(customer_id IS NULL) FROM {table}").fetchone()[0]
    return f"(customer_id IN (SELECT customer_id FROM {table})" + (" OR customer_id IS NULL)" if nobody else ")")


def differ(con: duckdb.DuckDBPyConnection, before: str, after: str, parameters: dict[str, object] | None = None) -> bool:
    """Whether the rows of ``before`` and ``after`` (tables or parenthesised queries with
    the same columns) differ as multisets: each distinct row (a struct, NULLs equal) with
    its count on one side and not the other (5x cheaper than EXCEPT ALL both ways)."""
    return bool(con.execute(
        f"WITH b AS (SELECT r AS row, count(*) AS n FROM {before} r GROUP BY ALL), "
        f"a AS (SELECT r AS row, count(*) AS n FROM {after} r GROUP BY ALL) "
        "SELECT count(*) FROM b FULL JOIN a ON b.row IS NOT DISTINCT FROM a.row AND b.n = a.n "
        "WHERE b.row IS NULL OR a.row IS NULL", parameters or {}).fetchone()[0])


@dataclass(frozen=True)
class RunningCount:
    """A count over a per-customer table, grouped by ``keys``, kept in ``table`` between
    derives: ``count`` of the ``source`` rows where ``where`` holds. Counts whose rows are
    each one customer's (``count(DISTINCT customer_id)``, ``count(*)`` of one row per
    customer) add up over customers, so an incremental derive takes the dirty customers'
    old contribution away (``forget``, before their rows are replaced) and adds their new
    one (``update``, after), instead of counting every customer's rows again."""

    table: str
    source: str
    keys: str
    where: str
    count: str

    def _counts(self, source: str, sign: str = "") -> str:
        return f"SELECT {self.keys}, {sign}{self.count} AS n FROM {source} WHERE {self.where} GROUP BY ALL"

    @property
    def _delta(self) -> str:
        return "delta_" + self.table.split(".")[-1]

    def forget(self, con: duckdb.DuckDBPyConnection, before: str) -> None:
        """The dirty customers' contribution before their rows were replaced (their old rows
        of ``source``, in the table ``before``), negated."""
        con.execute(f"CREATE OR REPLACE TEMP TABLE {self._delta} AS " + self._counts(before, "-"))

    def update(self, con: duckdb.DuckDBPyConnection, after: str | None) -> None:
        """Count in full (``after`` None), or add the dirty customers' new contribution (their
        new rows, in the table ``after``) to what ``forget`` kept and apply the sum (keys
        counting nothing any more go)."""
        if after is None:
            con.execute(f"CREATE OR REPLACE TABLE {self.table} AS " + self._counts(self.source))
            return
        con.execute(f"INSERT INTO {self._delta} " + self._counts(after))
        con.execute(f"CREATE OR REPLACE TABLE {self.table} AS SELECT * EXCLUDE (n), CAST(sum(n) AS BIGINT) AS n "
                    f"FROM (SELECT * FROM {self.table} UNION ALL BY NAME SELECT * FROM {self._delta}) "
                    "GROUP BY ALL HAVING sum(n) <> 0")
        con.execute(f"DROP TABLE {self._delta}")
