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
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from journey.errors import ProjectionError
from journey.projections.schema import ANALYST_TABLES

__all__ = ["OUTPUT", "SNAPSHOT", "data_now", "open_snapshot", "projection_status", "projector_lock", "publish", "query"]

SNAPSHOT = "snapshot"
"""The catalog name the published projection has on every reader's connection."""
OUTPUT = "output"
"""The catalog of the writable file ``open_snapshot(..., output=...)`` adds."""


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


@contextmanager
def open_snapshot(snapshot: Path, *, output: Path | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """The one way to read the published projection: read-only, with no file system or
    network access, so a query reads the projection and nothing else (no ``COPY ... TO``,
    no reading other files, no ``ATTACH``).

    With ``output``, the connection's own database is that DuckDB file (created if
    missing, writable, catalog ``output``) for a command that saves what it computed
    (``journey ideal --out``); the snapshot stays read-only and is the default catalog."""
    if not snapshot.exists():
        raise ProjectionError(f"there is no projection at {snapshot} yet; run `journey project`")
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    if output is not None:
        try:
            con.execute(f"ATTACH {_quote(output)} AS {OUTPUT}")
        except duckdb.Error as error:
            con.close()
            raise ProjectionError(f"cannot write {output}: {str(error).splitlines()[0]}") from None
    try:
        con.execute(f"ATTACH {_quote(snapshot)} AS {SNAPSHOT} (READ_ONLY)")
        con.execute(f"USE {SNAPSHOT}")
        con.execute("SET enable_external_access = false")
        con.execute("SET enable_progress_bar = false")
        con.execute("SET lock_configuration = true")
    except duckdb.Error as error:
        con.close()
        raise ProjectionError(f"cannot read the projection at {snapshot}: {str(error).splitlines()[0]}; "
                              "run `journey rebuild`") from None
    try:
        yield con
    finally:
        con.close()


def query(snapshot: Path, sql: str, parameters: list[Any] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run a read-only query on the published snapshot: column names and rows."""
    with open_snapshot(snapshot) as con:
        try:
            cursor = con.execute(sql, parameters or [])
        except duckdb.Error as error:
            raise ProjectionError(f"the query failed: {str(error).splitlines()[0]}") from None
        columns = [d[0] for d in cursor.description or []]
        return columns, cursor.fetchall()


def projection_status(snapshot: Path) -> dict[str, Any] | None:
    """The published projection's position, when it was derived, and its dead letters;
    None when nothing is published yet."""
    if not snapshot.exists():
        return None
    _, rows = query(snapshot, "SELECT position, updated_at, (SELECT count(*) FROM dead_letters) "
                              "FROM projection_status")
    if not rows:
        return None
    position, updated, dead = rows[0]
    return {"position": position, "updated_at": updated, "dead_letters": dead}


def data_now(con: duckdb.DuckDBPyConnection, moment: datetime | None = None) -> datetime:
    """``moment``, or where "now" is for an analysis that was given none: the latest touch
    in the projection (never the wall clock, so the same data gives the same answer)."""
    if moment is not None:
        return moment
    row = con.execute("SELECT max(occurred_at) FROM touchpoints").fetchone()
    if not row or row[0] is None:
        raise ProjectionError("the projection holds no touches yet; ingest some and run `journey project`")
    return row[0]
