"""The projector: catches a DuckDB file up with the event store, exactly once.

Each batch of notifications is loaded and its position tracked in one DuckDB
transaction; a crash anywhere (kill -9 included) resumes from the last committed
position. The analyst tables are then derived in one more transaction and a
read-only snapshot is published for analysts (see ``publish``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from threading import Event

import duckdb
from eventsourcing.persistence import Tracking

from journey.errors import ProjectionError
from journey.projections.derive import KEPT, derive, model_fingerprint
from journey.projections.load import Poison, load_batch
from journey.crypto.pseudonym import Pseudonymiser
from journey.projections.schema import BASE_DDL, MIGRATIONS, SCHEMA_VERSION
from journey.projections.stage_model import StageModel
from journey.projections.tracking import DuckDBTrackingRecorder
from journey.store.event_store import EventStore

log = logging.getLogger("journey.projector")

__all__ = ["CatchUp", "Derived", "Projector"]

APPLICATION = "journey-projection"
CHECKPOINT_THRESHOLD = "256MB"
"""DuckDB checkpoints a file at commit once its write-ahead log is this large (default
16 MB). An incremental derive logs a few MB; with the default, every few derives paid a
checkpoint of the working file (0.2-0.3 s at 1M touches) at commit. Closing the projector
still checkpoints. The snapshot slots follow ``publish.SLOT_WAL_LIMIT``."""
IDLE_CHECKPOINT = 16 * 2**20
"""A follower that finds nothing new checkpoints the working file once its write-ahead log
is this large (bytes, DuckDB's default threshold): the next burst of events then pays no
checkpoint inside its derive (derives holding one took 5.0-9.1 s at 1M touches under a
steady producer, against 1.5-3.4 s, measured on a loaded machine)."""


@dataclass(frozen=True)
class Derived:
    """What the last derive did: ``since`` None is a full derive; ``customers`` how many
    were derived again (None in full)."""

    since: int | None
    customers: int | None


@dataclass
class CatchUp:
    """What one catch-up did."""

    read: int = 0
    loaded: int = 0
    poison: list[Poison] = field(default_factory=list)
    position: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Events read per second."""
        return self.read / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, object]:
        return {"read": self.read, "loaded": self.loaded, "dead_letters": len(self.poison),
                "position": self.position, "seconds": round(self.seconds, 3)}


class Projector:
    """Owns one DuckDB file (one writing process at a time, DuckDB's rule)."""

    def __init__(
        self,
        store: EventStore,
        path: Path,
        pseudonyms: Pseudonymiser,
        *,
        batch_size: int = 245_760,
        as_of: datetime | None = None,
        memory_limit: str = "2GB",
        stage_model: StageModel | None = None,
    ) -> None:
        self.store = store
        self.stage_model = stage_model
        self.path = path
        self.pseudonyms = pseudonyms
        self.keys = store.sealer.keys if store.sealer is not None else None
        self.batch_size = batch_size
        self.as_of = as_of
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(path))
        except duckdb.IOException as error:
            raise ProjectionError(
                f"cannot open {path}: {str(error).splitlines()[0]}; is another projector "
                "running? (`journey status` shows it)"
            ) from None
        self.con.execute("SET enable_progress_bar = false")
        self.con.execute("SET memory_limit = ?", [memory_limit])
        self.con.execute("SET checkpoint_threshold = ?", [CHECKPOINT_THRESHOLD])
        for statement in BASE_DDL:
            self.con.execute(statement)
        self.tracking = DuckDBTrackingRecorder(self.con)
        self._check_meta()
        self.last_derive: Derived | None = None

    def _check_meta(self) -> None:
        meta = dict(self.con.execute("SELECT key, value FROM internal.meta").fetchall())
        expected = {
            "schema_version": str(SCHEMA_VERSION),
            "pseudonym_key": self.pseudonyms.fingerprint,
            "as_of": self.as_of.isoformat() if self.as_of else "",
        }
        if not meta:
            self.con.executemany("INSERT INTO internal.meta VALUES (?, ?)", list(expected.items()))
            return
        self._migrate(meta)
        for key, value in expected.items():
            if meta.get(key) != value:
                raise ProjectionError(
                    f"{self.path} was built with another {key.replace('_', ' ')} "
                    f"({meta.get(key) or 'none'!r}, now {value or 'none'!r}); run `journey rebuild`"
                )

    def _migrate(self, meta: dict[str, str]) -> None:
        """Bring a file of an older schema version to this one, a version at a time
        (``MIGRATIONS``), each step in one transaction; ``meta`` is updated in place."""
        version = meta.get("schema_version", "")
        while version.isdigit() and int(version) < SCHEMA_VERSION and int(version) in MIGRATIONS:
            log.info("%s: bringing the projection from schema version %s to %s (once)", self.path, version,
                     int(version) + 1)
            self.con.begin()
            try:
                for statement in MIGRATIONS[int(version)]:
                    self.con.execute(statement)
                version = str(int(version) + 1)
                self.con.execute("INSERT OR REPLACE INTO internal.meta VALUES ('schema_version', ?)", [version])
                self.con.commit()
            except BaseException:
                self.con.rollback()
                raise
            meta["schema_version"] = version

    @property
    def position(self) -> int:
        return self.tracking.max_tracking_id(APPLICATION) or 0

    def derived_position(self) -> int:
        row = self.con.execute("SELECT derived_position FROM projection_status").fetchone()
        return -1 if row is None else int(row[0])

    def catch_up(
        self,
        *,
        dead_letter: bool = False,
        stop: Event | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> CatchUp:
        """Load every stored event after the tracked position, batch by batch.

        A poison event raises ``ProjectionError`` (nothing of its batch is kept),
        or with ``dead_letter`` is recorded in ``dead_letters`` while the rest goes on.
        """
        result = CatchUp(position=self.position)
        started = time.perf_counter()
        if stop and stop.is_set():
            return result
        with ThreadPoolExecutor(1, thread_name_prefix="journey-read-ahead") as reader:
            ahead = reader.submit(self.store.recorder.select_lines, result.position + 1, self.batch_size)
            while not (stop and stop.is_set()):
                positions, lines = ahead.result()
                if not positions:
                    break
                # the next batch is read from the store while this one loads (the store's
                # driver and DuckDB both release the GIL): see docs/design.md, "The projector"
                ahead = reader.submit(self.store.recorder.select_lines, positions[-1] + 1, self.batch_size)
                self._load(positions, lines, result, dead_letter, progress)
            ahead.cancel()
        result.seconds = time.perf_counter() - started
        return result

    def _load(self, positions: list[int], lines: str, result: CatchUp, dead_letter: bool,
              progress: Callable[[int], None] | None) -> None:
        """Load one batch read from the store, in its own transaction."""
        self.con.begin()
        try:
            loaded, poison = load_batch(self.con, positions, lines, self.pseudonyms, keys=self.keys,
                                        as_of=self.as_of)
            if poison and not dead_letter:
                first = poison[0]
                raise ProjectionError(
                    f"the stored event at position {first.position} (event_id {first.event_id!r}) "
                    f"cannot be projected: {first.reason}. The event store is unchanged and the "
                    f"projection stays at position {result.position}; add an upcaster for it or "
                    "run `journey project --follow`, which records such events in dead_letters"
                )
            self._dead_letters(poison)
            self.tracking.insert_tracking(Tracking(APPLICATION, positions[-1]))
            self._status(positions[-1])
            self.con.commit()
        except BaseException:
            self.con.rollback()
            raise
        result.read += len(positions)
        result.loaded += loaded
        result.poison.extend(poison)
        result.position = positions[-1]
        if progress:
            progress(len(positions))

    def _dead_letters(self, poison: list[Poison]) -> None:
        if poison:
            now = datetime.now(timezone.utc)
            self.con.executemany(
                "INSERT INTO dead_letters VALUES (?, ?, ?, ?, ?)",
                [(p.position, p.event_id, p.topic, p.reason, now) for p in poison],
            )

    def _status(self, position: int, derived: int | None = None) -> None:
        events = self.con.execute(
            "SELECT (SELECT count(*) FROM internal.touches) + (SELECT count(*) FROM internal.identity_events)"
        ).fetchone()[0]
        previous = self.derived_position()
        self.con.execute("DELETE FROM projection_status")
        self.con.execute(
            "INSERT INTO projection_status VALUES (?, ?, ?, ?, ?, ?)",
            (position, events, derived if derived is not None else max(previous, 0),
             datetime.now(timezone.utc), self.as_of, SCHEMA_VERSION),
        )

    def derive(self, *, force: bool = False) -> bool:
        """Bring the analyst tables up to the projected position if the base moved on:
        incrementally (only the customers the new events touch) when the tables were
        derived before with the same stage model and no erasure came since, else in full."""
        position = self.position
        derived = self.derived_position()
        if not force and derived == position:
            return False
        since = None if force else self._incremental_from(derived)
        self.con.begin()
        try:
            customers = derive(self.con, self.stage_model, since=since)
            self.con.execute("INSERT OR REPLACE INTO internal.meta VALUES ('derived_with', ?)",
                             [model_fingerprint(self.stage_model)])
            self._status(position, derived=position)
            self.con.commit()
        except BaseException:
            self.con.rollback()
            raise
        self.last_derive = Derived(since, customers)
        return True

    def derives_in_full(self) -> bool:
        """Whether the next derive (if the base moved on) is a full one."""
        return self._incremental_from(self.derived_position()) is None

    def _incremental_from(self, derived: int) -> int | None:
        """The position an incremental derive can start from, or None for a full one."""
        if derived < 0:
            return None
        meta = dict(self.con.execute("SELECT key, value FROM internal.meta").fetchall())
        if meta.get("derived_with") != model_fingerprint(self.stage_model):
            return None
        tables = {f"{schema}.{name}" if schema != "main" else name for schema, name in self.con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database()"
        ).fetchall()}
        if not set(KEPT) <= tables:
            return None
        erased = self.con.execute("SELECT count(*) FROM internal.erasures WHERE position > ?", [derived]).fetchone()[0]
        return None if erased else derived

    def checkpoint_logged(self) -> bool:
        """Fold the write-ahead log into the file if it is larger than ``IDLE_CHECKPOINT``
        bytes (a follower calls this when it finds nothing new); whether it did."""
        wal = self.path.with_name(self.path.name + ".wal")
        if not wal.exists() or wal.stat().st_size <= IDLE_CHECKPOINT:
            return False
        self.con.execute("CHECKPOINT")
        return True

    def close(self) -> None:
        self.con.close()
