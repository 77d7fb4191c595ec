"""Readers and the one writer: a published snapshot, a lock, read-only queries.

DuckDB lets one process write a file and no other process open it meanwhile. So
the projector works on its own file and, after each derive, publishes the analyst
tables to the snapshot: a symbolic link to one of two slot files, the one readers are
not on brought up to date, then the link moved atomically (``publish``). The duckdb
CLI, pandas or a BI tool open the snapshot, read-only, at any time; a reader that has
the old slot open keeps reading it until it reopens.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from journey.errors import ProjectionError
from journey.projections.derive import CHANGES_DDL, LOGS, ROW_KEY, TOUCHPOINT_LOG, VARIANT_LOG, WRITTEN, derive_number
from journey.projections.kept import customers_in
from journey.projections.schema import ANALYST_TABLES
from journey.projections.slot_checkpoints import SlotCheckpoints

__all__ = ["OUTPUT", "SLOT_WAL_BACKGROUND", "SNAPSHOT", "Published", "data_now", "open_snapshot", "projection_status",
           "is_published", "projector_lock", "publish", "publish_pinned", "query", "slot_paths"]

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


SLOT_WAL_LIMIT = 64 * 2**20
"""A slot's write-ahead log is checkpointed into the file once it is this large (bytes):
below it, an update leaves its changes in the log (no checkpoint at commit or detach,
which rewrote the changed tables' blocks every publish); readers replay the log when they
open the slot, which grows with it."""

SLOT_WAL_BACKGROUND = 8 * 2**20
"""A follower checkpoints the slot the link has just left, in the background, once its
write-ahead log is this large (bytes): off the follower's path, and a reader opening the
slot replays a shorter log (0.35 s for 60 MB, measured)."""

PER_CUSTOMER = ("touchpoints", "customers", "customer_identifiers", "consent_state", "consent_violations")
"""Published tables copied customer by customer: only the customers a derive changed."""
SLOTS = ("a", "b")


@dataclass(frozen=True)
class Published:
    """What a publish did: the slot file written, and whether every table was copied
    whole (``full``) or only the changed customers' rows of the large tables."""

    slot: Path
    full: bool
    customers: int


def slot_paths(snapshot: Path) -> tuple[Path, Path]:
    """The two files the snapshot (a symbolic link) points to in turn."""
    return tuple(snapshot.with_name(f".{snapshot.name}.{name}") for name in SLOTS)  # type: ignore[return-value]


def publish(con: duckdb.DuckDBPyConnection, snapshot: Path, checkpoints: SlotCheckpoints | None = None) -> Published:
    """Publish the analyst tables: bring the slot file readers are *not* on up to date,
    then point ``snapshot`` (a symbolic link, replaced atomically) at it.

    The slot is updated in one transaction with only what changed since it was last
    published (``internal.derive_changes``, by derive number): the changed customers'
    rows of the large per-customer tables (``touchpoints`` from the derive's touchpoint
    log), the journey variants whose count changed (its variant log), the other
    aggregate tables whole. A copy of
    every table into a fresh file replaces it when that is not possible: when the slot is
    missing or new to this working file, after a full derive, or when a reader still
    holds it open (DuckDB lets no writer in then; the reader keeps its file). Readers
    never see a half-written slot: the link moves after the commit. Then the other slot
    is removed if it holds what this file no longer says (a full derive came since, an
    erasure say, or another working file wrote it).

    ``checkpoints`` (a follower's): the slot the link has just left is checkpointed in
    the background (see ``slot_checkpoints``); the next publish waits for it first."""
    if checkpoints is not None:
        checkpoints.wait()
    target, other = _target(snapshot)
    number = derive_number(con)
    generation = _published(con, target)
    con.execute(CHANGES_DDL)
    changed, every = _changes_since(con, generation)
    result = None if (generation is None or every) else _update(con, target, changed, generation)
    if result is None:
        _copy(con, target)
        result = Published(target, True, 0)
    _point_at(con, snapshot, target, other, number, checkpoints)
    return result


def publish_pinned(cursor: duckdb.DuckDBPyConnection, snapshot: Path,
                   checkpoints: SlotCheckpoints | None = None) -> Published | None:
    """``publish`` from a cursor whose transaction is pinned at the derive to publish (it
    has read the working file; see ``publish_behind``), while the connection it came from
    loads and derives the next batch: what it reads is that derive's, whatever commits
    meanwhile. Only an update of the slot is made this way; when the slot needs a whole
    copy (new, stale, or held by a reader) it returns None, having written nothing, and the
    caller publishes again with ``publish``."""
    if checkpoints is not None:
        checkpoints.wait()
    target, other = _target(snapshot)
    number = derive_number(cursor)
    generation = _published(cursor, target)
    changed, every = _changes_since(cursor, generation)  # the derive made the table: no DDL here
    result = None if (generation is None or every) else _update(cursor, target, changed, generation, pinned=True)
    if result is None:
        cursor.rollback()
        return None
    _point_at(cursor, snapshot, target, other, number, checkpoints)
    return result


def _target(snapshot: Path) -> tuple[Path, Path]:
    """The slot to write (the one the link is not on) and the other one."""
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    slots = slot_paths(snapshot)
    current = Path(os.readlink(snapshot)).name if snapshot.is_symlink() else None
    target = slots[1] if current == slots[0].name else slots[0]
    return target, (slots[0] if target == slots[1] else slots[1])


def _point_at(con: duckdb.DuckDBPyConnection, snapshot: Path, target: Path, other: Path, number: int,
              checkpoints: SlotCheckpoints | None) -> None:
    """Record what ``target`` holds, move the link to it, then deal with the other slot:
    removed if stale, else checkpointed behind (a follower's), and prune the logs."""
    con.execute("INSERT OR REPLACE INTO internal.meta VALUES (?, ?)", [_SLOT_KEY + target.name, str(number)])
    link = snapshot.with_name(f".{snapshot.name}.{os.getpid()}.link")
    link.unlink(missing_ok=True)
    os.symlink(target.name, link)
    os.replace(link, snapshot)
    older = _published(con, other)
    if older is None or _changes_since(con, older)[1]:
        _remove(other)  # stale: a full derive came since, or this file never wrote it
        older = None
    elif checkpoints is not None:
        checkpoints.start(other)
    kept = number if older is None else older
    con.execute("DELETE FROM internal.derive_changes WHERE derive <= ?", [kept])
    if _has_log(con):
        for table in LOGS:
            con.execute(f"DELETE FROM {table} WHERE derive <= ?", [kept])


def is_published(con: duckdb.DuckDBPyConnection, snapshot: Path) -> bool:
    """Whether ``snapshot`` shows this working file's last derive (False after a crash
    between a derive and its publish, or before the first publish)."""
    if not snapshot.is_symlink() or not snapshot.exists():
        return False
    slot = snapshot.with_name(os.readlink(snapshot))
    return _published(con, slot) == derive_number(con)


_SLOT_KEY = "published-derive:"


def _published(con: duckdb.DuckDBPyConnection, slot: Path) -> int | None:
    """The derive number this working file last published into ``slot`` (None: never, or
    the file is gone). The working file keeps it: a rebuilt file has published nothing."""
    if not slot.exists():
        return None
    row = con.execute("SELECT value FROM internal.meta WHERE key = ?", [_SLOT_KEY + slot.name]).fetchone()
    return None if row is None else int(row[0])


def _changes_since(con: duckdb.DuckDBPyConnection, generation: int | None) -> tuple[list[str | None], bool]:
    """The customers derived again after derive ``generation``, and whether a full derive came since."""
    if generation is None:
        return [], False
    rows = con.execute("SELECT DISTINCT customer_id, every FROM internal.derive_changes WHERE derive > ?",
                       [generation]).fetchall()
    return [customer for customer, _ in rows], any(every for _, every in rows)


def _remove(slot: Path) -> None:
    """A slot file and its write-ahead log (a reader of it keeps its open file)."""
    slot.unlink(missing_ok=True)
    _wal(slot).unlink(missing_ok=True)


def _has_log(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the working file keeps the touchpoint log (a file no derive of this
    version has written yet does not)."""
    names = {f"{schema}.{name}" for schema, name in con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database()").fetchall()}
    return set(LOGS) <= names


# The touchpoints rows changed since the slot's derive, from the touchpoint logs: every key
# a derive since wrote or removed (``published_keys``), and each written key's last row
# unless a later derive removed it (``published_touches``), so the publish never scans
# every touch.
_PUBLISHED_KEYS = f"""
CREATE OR REPLACE TEMP TABLE published_keys AS
SELECT row_key FROM {TOUCHPOINT_LOG[1]} WHERE derive > $generation
UNION
SELECT {ROW_KEY} FROM {TOUCHPOINT_LOG[0]} WHERE derive > $generation
"""
_PUBLISHED_TOUCHES = f"""
CREATE OR REPLACE TEMP TABLE published_touches AS
WITH written AS (
    SELECT *, {ROW_KEY} AS row_key FROM {TOUCHPOINT_LOG[0]} WHERE derive > $generation
    QUALIFY row_number() OVER (PARTITION BY row_key ORDER BY derive DESC) = 1
), removed AS (
    SELECT row_key, max(derive) AS derive FROM {TOUCHPOINT_LOG[1]} WHERE derive > $generation GROUP BY row_key
)
SELECT w.* EXCLUDE (derive, row_key) FROM written w LEFT JOIN removed r USING (row_key)
WHERE r.derive IS NULL OR r.derive <= w.derive
"""


def _update(con: duckdb.DuckDBPyConnection, slot: Path, changed: list[str | None],
            generation: int, *, pinned: bool = False) -> Published | None:
    """Apply the changes to ``slot`` in one transaction (``pinned``: the one ``con`` is in,
    committed here); None when a reader holds it (or the working file keeps no touchpoint
    log yet: a whole copy then)."""
    if not _has_log(con):
        return None
    try:
        con.execute(f"ATTACH {_quote(slot)} AS snapshot")
    except duckdb.Error:  # (a pinned transaction is aborted with it: the caller rolls back)
        return None
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE published_changes AS SELECT unnest($1::VARCHAR[]) AS customer_id",
                    [changed])
        con.execute(_PUBLISHED_KEYS, {"generation": generation})
        con.execute(_PUBLISHED_TOUCHES, {"generation": generation})
        con.execute(f"CREATE OR REPLACE TEMP TABLE published_variants AS SELECT DISTINCT variant FROM {VARIANT_LOG} "
                    "WHERE derive > ?", [generation])
        unchanged = _unchanged_since(con, generation)
        scope = customers_in(con, "published_changes")
        if not pinned:
            con.begin()
        try:
            for table in ANALYST_TABLES:
                if table in unchanged:
                    continue
                if table == "touchpoints":
                    con.execute(f"DELETE FROM snapshot.touchpoints WHERE {ROW_KEY} IN (SELECT row_key FROM published_keys)")
                    con.execute("INSERT INTO snapshot.touchpoints BY NAME SELECT * FROM published_touches")
                elif table == "journey_variants":  # the variants whose count changed (VARIANT_LOG)
                    changed_variants = "variant IN (SELECT variant FROM published_variants)"
                    con.execute(f"DELETE FROM snapshot.{table} WHERE {changed_variants}")
                    con.execute(f"INSERT INTO snapshot.{table} SELECT * FROM main.{table} WHERE {changed_variants}")
                elif table in PER_CUSTOMER:
                    con.execute(f"DELETE FROM snapshot.{table} WHERE {scope}")
                    con.execute(f"INSERT INTO snapshot.{table} SELECT * FROM main.{table} WHERE {scope}")
                else:
                    con.execute(f"CREATE OR REPLACE TABLE snapshot.{table} AS SELECT * FROM main.{table}")
            con.commit()
        except BaseException:
            con.rollback()
            raise
        con.execute("DROP TABLE published_changes; DROP TABLE published_keys; DROP TABLE published_touches; "
                    "DROP TABLE published_variants")
        if _wal(slot).exists() and _wal(slot).stat().st_size > SLOT_WAL_LIMIT:
            con.execute("CHECKPOINT snapshot")
    finally:
        _detach_keeping_wal(con)
    return Published(slot, False, len(changed))


def _unchanged_since(con: duckdb.DuckDBPyConnection, generation: int) -> set[str]:
    """The tables no derive after ``generation`` wrote (of those whose last writing derive is
    kept, ``WRITTEN``)."""
    return {key[len(WRITTEN):] for key, value in con.execute(
        "SELECT key, value FROM internal.meta WHERE starts_with(key, ?)", [WRITTEN]).fetchall()
        if int(value) <= generation}


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _detach_keeping_wal(con: duckdb.DuckDBPyConnection) -> None:
    """Detach the slot without the checkpoint DuckDB makes when it closes a file: the
    committed changes stay in the slot's write-ahead log, which a reader opening the slot
    (read-only too) replays, and the next update of the slot appends to."""
    con.execute("PRAGMA disable_checkpoint_on_shutdown")
    try:
        con.execute("DETACH snapshot")
    finally:
        con.execute("PRAGMA enable_checkpoint_on_shutdown")


def _copy(con: duckdb.DuckDBPyConnection, slot: Path) -> None:
    """Every analyst table into a fresh file, renamed over ``slot`` (a reader of the old
    file keeps reading it). The slot's old write-ahead log goes first: left beside the new
    file (a crash before a checkpoint), it would make the new file unreadable."""
    temporary = slot.with_name(f"{slot.name}.{os.getpid()}.tmp")
    _remove(temporary)
    con.execute(f"ATTACH {_quote(temporary)} AS snapshot")
    try:
        for table in ANALYST_TABLES:
            con.execute(f"CREATE TABLE snapshot.{table} AS SELECT * FROM main.{table}")
        con.execute("CHECKPOINT snapshot")  # a whole file, with no log beside it
    finally:
        con.execute("DETACH snapshot")
    _wal(slot).unlink(missing_ok=True)
    os.replace(temporary, slot)


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
        _attach_published(con, snapshot)
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


def _attach_published(con: duckdb.DuckDBPyConnection, snapshot: Path, attempts: int = 5) -> None:
    """Attach the file the link points to. A reader that followed the link just before a
    publish moved it may find the projector writing that file (a moment's window): it
    follows the link again."""
    for attempt in range(attempts):
        try:
            con.execute(f"ATTACH {_quote(snapshot)} AS {SNAPSHOT} (READ_ONLY)")
            return
        except duckdb.IOException:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


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
