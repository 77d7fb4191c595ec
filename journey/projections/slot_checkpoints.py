"""Checkpoints of snapshot slots in a background thread, for a follower.

A publish leaves its changes in the slot's write-ahead log; folding the log into the file
(a checkpoint) took 1.5-2.7 s inside a follower's publish once the log passed
``publish.SLOT_WAL_LIMIT`` (bench/RESULTS.md). The slot the snapshot link has just left
is the one the *next* publish writes: a follower checkpoints it in a thread while it
loads and derives the next batch, and that publish waits for the thread before it opens
the slot. The thread opens the slot in its own DuckDB instance (one thread): the main
connection never has it attached meanwhile (it attaches a slot only inside a publish,
which waits first). A reader still holding the slot keeps the checkpoint out (DuckDB's
file lock); the slot is then checkpointed by the publish as before, if its log is large.
Readers opening the snapshot follow the link to the other slot; one that followed it just
before it moved retries (``publish._attach_published``).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import duckdb

__all__ = ["SlotCheckpoints"]

log = logging.getLogger("journey.projector")


class SlotCheckpoints:
    """The background checkpoints of one follower's slots: at most one per slot."""

    def __init__(self, limit: int) -> None:
        """``limit``: checkpoint a slot whose write-ahead log is larger (bytes)."""
        self.limit = limit
        self._running: dict[Path, threading.Thread] = {}

    def start(self, slot: Path) -> bool:
        """Checkpoint ``slot`` in a thread if its log is past the limit; whether one started."""
        self.wait(slot)
        wal = slot.with_name(slot.name + ".wal")
        if not wal.exists() or wal.stat().st_size <= self.limit:
            return False
        thread = threading.Thread(target=_checkpoint, args=(slot,), name=f"checkpoint {slot.name}")
        self._running[slot] = thread
        thread.start()
        return True

    def wait(self, slot: Path | None = None) -> None:
        """Until the checkpoint of ``slot`` (None: of every slot) has finished."""
        for path in [slot] if slot is not None else list(self._running):
            thread = self._running.pop(path, None)
            if thread is not None:
                thread.join()


def _checkpoint(slot: Path) -> None:
    started = time.perf_counter()
    try:
        con = duckdb.connect(str(slot), config={"threads": "1"})
    except duckdb.Error as error:  # a reader holds it: the publish checkpoints it if need be
        log.debug("slot %s not checkpointed in the background: %s", slot.name, str(error).splitlines()[0])
        return
    try:
        con.execute("CHECKPOINT")
    except duckdb.Error as error:  # the log stays; the publish checkpoints it if need be
        log.warning("slot %s not checkpointed in the background: %s", slot.name, str(error).splitlines()[0])
        return
    finally:
        con.close()
    log.debug("checkpointed slot %s in the background in %.2f s", slot.name, time.perf_counter() - started)
