"""A follower's publish of one derive, running while the follower loads and derives the next.

A follower's cycle was load, derive, publish, one after the other, and a touch waited for
all three of the cycle it arrived in and for half of the one before. The publish only
reads the working file (and writes a slot file), so it can run beside the next cycle's
load and derive: a second cursor of the working file's connection opens a transaction and
reads the file at once, which pins what it reads at the derive just committed (DuckDB's
snapshot isolation; a transaction's view of a file starts at its first read of it), and a
thread publishes from it (``publish.publish_pinned``: the slot's and the temporary tables'
writes are allowed in that transaction; the meta rows it writes after its commit are other
rows than the next derive's). The follower waits for it before the next publish (the
slots alternate), before a derive in full (which replaces the logs the publish prunes),
before it checkpoints, and before it stops. A slot that needs a whole copy (new, stale
after a full derive, held by a reader) is copied by the follower itself when it waits,
from the latest derive.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import duckdb

from journey.projections.publish import Published, publish, publish_pinned
from journey.projections.slot_checkpoints import SlotCheckpoints

__all__ = ["Finished", "PublishBehind"]

T = TypeVar("T")


@dataclass(frozen=True)
class Finished(Generic[T]):
    """A publish that ran behind: what the caller gave ``start`` for it, its seconds (the
    thread's, and a whole copy by the waiter) and what it did."""

    context: T
    seconds: float
    published: Published


class PublishBehind(Generic[T]):
    """At most one publish in flight, from ``con``'s working file to ``snapshot``."""

    def __init__(self, con: duckdb.DuckDBPyConnection, snapshot: Path, checkpoints: SlotCheckpoints) -> None:
        self.con = con
        self.snapshot = snapshot
        self.checkpoints = checkpoints
        self._thread: threading.Thread | None = None
        self._context: T | None = None
        self._seconds = 0.0
        self._outcome: Published | BaseException | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, context: T) -> None:
        """Publish what ``con`` holds now (its last derive), in a thread; ``context`` comes
        back with it from ``finish``. The publish in flight, if any, must be finished first."""
        if self._thread is not None:
            raise RuntimeError("a publish is still in flight: finish it first")
        cursor = self.con.cursor()
        cursor.begin()
        cursor.execute("SELECT count(*) FROM internal.meta").fetchall()  # pins the working file's view
        self._context, self._outcome = context, None
        self._thread = threading.Thread(target=self._run, args=(cursor,), name="publish behind")
        self._thread.start()

    def _run(self, cursor: duckdb.DuckDBPyConnection) -> None:
        started = time.perf_counter()
        try:
            self._outcome = publish_pinned(cursor, self.snapshot, self.checkpoints)
        except BaseException as error:  # raised again in the follower's thread by finish()
            self._outcome = error
        finally:
            cursor.close()
            self._seconds = time.perf_counter() - started

    def finish(self) -> Finished[T] | None:
        """Wait for the publish in flight (None: there was none). One that could not update
        its slot is done here, as a whole copy of the latest derive; an error it met is
        raised here."""
        thread, self._thread = self._thread, None
        if thread is None:
            return None
        thread.join()
        outcome, context = self._outcome, self._context
        self._outcome = self._context = None
        if isinstance(outcome, BaseException):
            raise outcome
        started = time.perf_counter()
        published = outcome if outcome is not None else publish(self.con, self.snapshot, self.checkpoints)
        seconds = self._seconds + time.perf_counter() - started
        return Finished(context, seconds, published)  # type: ignore[arg-type]
