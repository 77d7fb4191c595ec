"""Readers and the one writer: a published snapshot, a lock, read-only queries.

DuckDB lets one process write a file and no other process open it meanwhile. So
the projector works on its own file and, after each derive, publishes the analyst
tables into a new snapshot file that replaces the old one atomically (rename).
The duckdb CLI, pandas or a BI tool open the snapshot, read-only, at any time; a
reader that has the old snapshot open keeps reading it until it reopens.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from journey.errors import ProjectionError
from journey.projections.schema import ANALYST_TABLES

__all__ = ["projector_lock", "publish", "query"]


@contextmanager
def projector_lock(working: Path) -> Iterator[None]:
    """Only one projector per file: a follower, a catch-up and a rebuild exclude each other."""
    working.parent.mkdir(parents=True, exist_ok=True)
    lock_path = working.with_name(working.name + ".lock")
    with open(lock_path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise ProjectionError(
                f"a projector is already running on {working} ({holder}); stop it first "
                "(`journey project --follow` stops on Ctrl-C or SIGTERM)"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}")
        lock.flush()
        try:
            yield
        finally:
            lock.truncate(0)
            fcntl.flock(lock, fcntl.LOCK_UN)


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def publish(con: duckdb.DuckDBPyConnection, snapshot: Path) -> None:
    """Copy the analyst tables into a fresh file, then rename it over ``snapshot``."""
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    temporary = snapshot.with_name(f".{snapshot.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    con.execute(f"ATTACH {_quote(temporary)} AS snapshot")
    try:
        for table in ANALYST_TABLES:
            con.execute(f"CREATE TABLE snapshot.{table} AS SELECT * FROM main.{table}")
    finally:
        con.execute("DETACH snapshot")
    os.replace(temporary, snapshot)


def query(snapshot: Path, sql: str, parameters: list[Any] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run a read-only query on the published snapshot: column names and rows."""
    if not snapshot.exists():
        raise ProjectionError(f"there is no projection at {snapshot} yet; run `journey project`")
    con = duckdb.connect(str(snapshot), read_only=True)
    try:
        cursor = con.execute(sql, parameters or [])
        columns = [d[0] for d in cursor.description or []]
        return columns, cursor.fetchall()
    except duckdb.Error as error:
        raise ProjectionError(f"the query failed: {str(error).splitlines()[0]}") from None
    finally:
        con.close()
