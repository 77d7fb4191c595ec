"""SQLite adapter: the embedded default, one file under ``JOURNEY_HOME``.

One writing process at a time (SQLite's rule); readers never block (WAL mode).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteCursor, SQLiteDatastore, SQLiteProcessRecorder

from journey.store._sql import QUARANTINE_COLUMNS, entry_from_row, rejection_row, rows_of
from journey.store.recorder import ERASED_REASON, JourneyRecorder, Resolution, utcnow
from journey.store.records import QuarantineEntry

__all__ = ["SQLiteJourneyRecorder", "open_sqlite"]

_CHUNK = 900  # stay under SQLite's bound-parameter limit on old builds


class SQLiteJourneyRecorder(SQLiteProcessRecorder, JourneyRecorder):
    """Stored events and tracking (eventsourcing's tables) plus the quarantine."""

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS journey_quarantine ("
            "id INTEGER PRIMARY KEY AUTOINCREMENT, quarantined_at TEXT NOT NULL, "
            "source TEXT NOT NULL, locator TEXT NOT NULL, event_id TEXT, "
            "code TEXT NOT NULL, reason TEXT NOT NULL, raw BLOB NOT NULL, "
            "resolved_at TEXT, resolution TEXT)",
            "CREATE INDEX IF NOT EXISTS journey_quarantine_open "
            "ON journey_quarantine (event_id) WHERE resolved_at IS NULL",
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        # One executemany for the batch (the library inserts row by row to read
        # lastrowid); rowids of one write transaction are consecutive.
        c.executemany(self.insert_events_statement, rows_of(stored_events))
        ids: list[int] = []
        if stored_events:
            c.execute("SELECT MAX(rowid) FROM stored_events")
            last = c.fetchone()[0]
            ids = list(range(last - len(stored_events) + 1, last + 1))
        if kwargs.get("tracking") is not None:
            self._insert_tracking(c, kwargs["tracking"])
        now = utcnow().isoformat()
        rejections = kwargs.get("rejections") or ()
        if rejections:
            c.executemany(
                "INSERT INTO journey_quarantine (quarantined_at, source, locator, "
                "event_id, code, reason, raw) VALUES (?,?,?,?,?,?,?)",
                [rejection_row(r, now) for r in rejections],  # type: ignore[arg-type]
            )
        if kwargs.get("resolution"):
            self._resolve(c, kwargs["resolution"], now)
        return ids

    def _resolve(self, c: SQLiteCursor, resolution: Resolution, now: str) -> None:
        event_ids, ids, note = resolution
        c.execute("SELECT 1 FROM journey_quarantine WHERE resolved_at IS NULL LIMIT 1")
        if c.fetchone() is None:
            return
        update = "UPDATE journey_quarantine SET resolved_at=?, resolution=? WHERE resolved_at IS NULL AND "
        for start in range(0, len(event_ids), _CHUNK):
            chunk = list(event_ids[start : start + _CHUNK])
            c.execute(
                update + f"code != 'conflict' AND event_id IN ({','.join('?' * len(chunk))})",
                [now, note, *chunk],
            )
        for start in range(0, len(ids), _CHUNK):
            chunk = list(ids[start : start + _CHUNK])
            c.execute(update + f"id IN ({','.join('?' * len(chunk))})", [now, note, *chunk])

    def select_streams(self, originator_ids: Sequence[str]) -> dict[str, StoredEvent]:
        if not originator_ids:
            return {}
        with self.datastore.transaction(commit=False) as c:
            c.execute(  # one query per batch: the ids travel as one JSON array
                "SELECT originator_id, topic, state FROM stored_events WHERE originator_version=1 "
                "AND originator_id IN (SELECT value FROM json_each(?))",
                (orjson.dumps(list(originator_ids)).decode(),),
            )
            return {
                row[0]: StoredEvent(row[0], 1, row[1], row[2]) for row in c.fetchall()
            }

    def select_rows(self, start: int, limit: int) -> list[tuple[int, str, str]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT rowid, topic, CAST(state AS TEXT) FROM stored_events "
                "WHERE rowid >= ? ORDER BY rowid LIMIT ?",
                (start, limit),
            )
            return [tuple(row) for row in c.fetchall()]  # type: ignore[misc]

    def select_lines(self, start: int, limit: int) -> tuple[list[int], str]:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT rowid FROM stored_events WHERE rowid >= ? ORDER BY rowid LIMIT ?", (start, limit))
            positions = [row[0] for row in c.fetchall()]
            if not positions:
                return [], ""
            c.execute(
                "SELECT group_concat('{\"p\":' || rowid || ',\"t\":' || json_quote(topic) || ',\"s\":' "
                "|| CAST(state AS TEXT) || '}', char(10)) FROM (SELECT rowid, topic, state "
                "FROM stored_events WHERE rowid BETWEEN ? AND ? ORDER BY rowid)",
                (positions[0], positions[-1]),
            )
            return positions, c.fetchone()[0]

    def select_quarantine(
        self, *, open_only: bool = True, after_id: int = 0, limit: int = 1000
    ) -> list[QuarantineEntry]:
        where = "id > ?" + (" AND resolved_at IS NULL" if open_only else "")
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT {QUARANTINE_COLUMNS} FROM journey_quarantine WHERE {where} "
                "ORDER BY id LIMIT ?",
                (after_id, limit),
            )
            return [entry_from_row(row) for row in c.fetchall()]

    def count_quarantine(self, *, open_only: bool = True) -> int:
        where = " WHERE resolved_at IS NULL" if open_only else ""
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT COUNT(*) FROM journey_quarantine{where}")
            return int(c.fetchone()[0])

    def dismiss_quarantine(self, ids: Sequence[int], note: str) -> int:
        with self.datastore.transaction(commit=True) as c:
            before = self._open(c)
            self._resolve(c, ((), ids, f"dismissed: {note}"), utcnow().isoformat())
            return before - self._open(c)

    def erase_quarantine(self, ids: Sequence[int], note: str) -> int:
        with self.datastore.transaction(commit=True) as c:
            c.execute(f"SELECT count(*) FROM journey_quarantine WHERE id IN ({','.join('?' * len(ids))})", list(ids))
            found = int(c.fetchone()[0])
            c.executemany(
                "UPDATE journey_quarantine SET raw=?, reason=?, resolved_at=?, resolution=? WHERE id=?",
                [(b"", ERASED_REASON, utcnow().isoformat(), note, i) for i in ids],
            )
            return found

    @staticmethod
    def _open(c: SQLiteCursor) -> int:
        c.execute("SELECT COUNT(*) FROM journey_quarantine WHERE resolved_at IS NULL")
        return int(c.fetchone()[0])


def open_sqlite(path: str) -> SQLiteJourneyRecorder:
    """Open (creating if needed) the SQLite event store at ``path``."""
    datastore = SQLiteDatastore(path, lock_timeout=30, originator_id_type="text")
    recorder = SQLiteJourneyRecorder(datastore)
    recorder.create_table()
    return recorder
