"""Ingestion: records in, validated in batches, appended atomically; bad ones quarantined.

After any run: ``accepted + duplicates + quarantined == read``.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
import time
from sys import intern
from collections.abc import Callable, Iterable, Iterator, Sequence
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from itertools import chain, islice
from typing import NamedTuple

import orjson

from journey.crypto.sealer import Sealer
from journey.crypto.sealing import SealerSpec
from journey.domain.touch import check_touch
from journey.errors import InvalidTouchError
from journey.ingest.sources import RawRecord
from journey.limits import MAX_RECORD_BYTES
from journey.store.batch import Packed, Touches
from journey.store.event_store import EventStore
from journey.store.records import Rejection

__all__ = ["IngestSummary", "Ingestor", "RetrySummary"]

Progress = Callable[[int], None]


@dataclass
class IngestSummary:
    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    seconds: float = 0.0
    position: int | None = None
    """The store's head position when the ingest ended (None: not read): once a
    projection holds it, it holds everything this ingest stored or found stored."""

    @property
    def rate(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, float | int]:
        fields = {k: v for k, v in asdict(self).items() if v is not None}
        return {**fields, "seconds": round(self.seconds, 3), "rate": round(self.rate, 1)}


@dataclass
class RetrySummary:
    retried: int = 0
    accepted: int = 0
    duplicates: int = 0
    still_failing: int = 0
    skipped_conflicts: int = 0


def _event_id_of(raw: bytes) -> str | None:
    """Best effort: the event_id of a record that failed validation, for the quarantine."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    event_id = value.get("event_id") if isinstance(value, dict) else None
    return event_id if isinstance(event_id, str) and 0 < len(event_id) <= 200 else None


class Checked(NamedTuple):
    """A validated batch, as a worker returns it: a few objects, not one per touch.
    Accepted touches in columns (their positions in the batch, ids, types, canonical
    JSON joined, and the sealed JSON joined when the worker sealed them); rejected
    ones as ``(position, code, reason, event_id)``."""

    index: list[int]
    event_ids: list[str]
    types: list[str]
    content: Packed
    sealed: Packed | None
    rejected: list[tuple[int, str, str, str | None]]


_FEW_COLLECTIONS = (200_000, 50, 1000)
"""gc thresholds while ingesting (see ``_few_collections``)."""

_worker_sealer: Sealer | None = None
"""In a worker process: its own sealer (its own key-store connection), opened at start."""


_PARENT_CHECK_SECONDS = 1.0
"""How often a worker checks that the ingest process it works for is still there."""


def _start_worker(spec: SealerSpec | None, parent: int) -> None:
    global _worker_sealer
    threading.Thread(target=_exit_without, args=(parent,), name="parent watch", daemon=True).start()
    _worker_sealer = spec.open() if spec is not None else None
    # a worker lives for one ingest: collect as rarely as the writer does (measured: the
    # default thresholds cost 8% of the encrypted rate, rescanning the worker's key caches)
    gc.freeze()
    gc.set_threshold(*_FEW_COLLECTIONS)


def _exit_without(parent: int) -> None:
    """In a worker: exit once the ingest process ``parent`` is gone. After a ``kill -9``
    of it nothing else ends a worker: each holds both ends of the pool's task pipe (so it
    waits for a task forever) and the fork server's liveness pipe (so the fork server, and
    the resource tracker beside it, stay too): found after killed ingests left them
    running, and tested."""
    started = _start_time(parent)
    while True:
        time.sleep(_PARENT_CHECK_SECONDS)
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:  # another user's process: the pid was reused
            os._exit(0)
        if started is not None and _start_time(parent) != started:  # reused by a process of ours
            os._exit(0)


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (Linux: /proc), to tell it from a later one with its pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def _ready() -> bool:
    """A no-op task: returns once this worker has started (its initializer has run)."""
    return True


def check_and_seal(raws: Sequence[bytes], default_region: str | None, max_bytes: int) -> Checked:
    """In a worker: validate a batch, then seal its accepted touches with this
    worker's sealer, so the writing process only appends."""
    identifiers: list[tuple[tuple[str, str], ...] | None] = []
    checked = check(raws, default_region, max_bytes, identifiers=identifiers)
    if _worker_sealer is None or not checked.index:
        return checked
    return checked._replace(sealed=Packed.of(_worker_sealer.seal_all(checked.content.items(), identifiers)))


def check(raws: Sequence[bytes], default_region: str | None, max_bytes: int, *,
          identifiers: list[tuple[tuple[str, str], ...] | None] | None = None) -> Checked:
    """Validate a batch of raw records. A pure function, so it can run in a worker.
    ``identifiers`` (a list) gets each accepted touch's customer identifiers, for sealing."""
    index: list[int] = []
    event_ids: list[str] = []
    types: list[str] = []
    content: list[bytes] = []
    rejected: list[tuple[int, str, str, str | None]] = []
    for position, raw in enumerate(raws):
        try:
            touch = check_touch(raw, default_region=default_region, max_bytes=max_bytes)
        except InvalidTouchError as error:
            event_id = None if error.code == "oversized" else _event_id_of(raw)
            rejected.append((position, error.code, error.reason, event_id))
        else:
            index.append(position)
            event_ids.append(touch.event_id)
            types.append(intern(touch.type))  # one object a type: pickled once a batch
            content.append(touch.content)
            if identifiers is not None:
                identifiers.append(touch.identifiers)
    return Checked(index, event_ids, types, Packed.of(content), None, rejected)


@contextmanager
def _few_collections() -> Iterator[None]:
    """Ingestion allocates millions of short-lived, acyclic objects that reference
    counting frees; the cyclic collector scanning them every 700 allocations cost
    half the ingest time (measured). Collect rarely while ingesting, then restore."""
    before = gc.get_threshold()
    gc.set_threshold(*_FEW_COLLECTIONS)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _batches(records: Iterable[RawRecord], size: int) -> Iterator[list[RawRecord]]:
    iterator = iter(records)
    while batch := list(islice(iterator, size)):
        yield batch


def _assemble(batch: Sequence[RawRecord], checked: Checked) -> tuple[Touches, list[Rejection]]:
    """The batch's touches for the store (columns, pointing back at ``batch``) and its
    rejections."""
    touches = Touches(checked.event_ids, checked.types, checked.content, checked.sealed, batch, checked.index)
    rejections = []
    for position, code, reason, event_id in checked.rejected:
        record = batch[position]
        rejections.append(Rejection(record.source, record.locator, record.raw, code, reason, event_id))
    return touches, rejections


class Ingestor:
    """Validates records at the edge and appends them to the event store."""

    def __init__(
        self,
        store: EventStore,
        *,
        default_region: str | None = None,
        max_record_bytes: int = MAX_RECORD_BYTES,
        batch_size: int = 5000,
        workers: int = 0,
        sealing: SealerSpec | None = None,
    ) -> None:
        """``workers``: processes that validate (and, given ``sealing``, seal with
        their own key-store connections) while this one writes; 0 validates here and
        the store seals. An input of one batch is handled here, without starting
        workers. Worker processes start from a fork server, so a script that uses them
        needs the ``if __name__ == "__main__":`` guard (the ``journey`` command has it)."""
        self.store = store
        self.default_region = default_region
        self.max_record_bytes = max_record_bytes
        self.batch_size = batch_size
        self.workers = workers
        self.sealing = sealing

    def validate(self, batch: Sequence[RawRecord]) -> tuple[Touches, list[Rejection]]:
        """Validate a batch here, in this process."""
        return _assemble(batch, check([r.raw for r in batch], self.default_region, self.max_record_bytes))

    def validated(
        self, batches: Iterable[list[RawRecord]], *, stream: bool = False
    ) -> Iterator[tuple[list[RawRecord], tuple[Touches, list[Rejection]]]]:
        """Validated (and, with workers and ``sealing``, sealed) batches in input
        order. With ``workers >= 1`` and more than one batch of input, the work runs
        in worker processes, up to ``2 * workers`` batches ahead, while the caller
        stores; a single batch is validated here (no worker start-up).

        An empty batch is a tick from a source with nothing new (a Kafka poll that
        timed out): every batch in flight is finished and handed over, none is kept.
        ``stream``: a long-running source (Kafka): start the workers at once."""
        iterator = iter(batches)
        head = [] if stream else list(islice((b for b in iterator if b), 2))
        if self.workers < 1 or (len(head) < 2 and not stream):  # one batch: not worth starting workers
            for batch in chain(head, iterator):
                if batch:
                    yield batch, self.validate(batch)
            return
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["journey.ingest.pipeline"])
        with ProcessPoolExecutor(self.workers, mp_context=context, initializer=_start_worker,
                                 initargs=(self.sealing, os.getpid())) as pool:
            if stream:  # start (and open the key stores of) every worker before consuming
                for warm in [pool.submit(_ready) for _ in range(self.workers)]:
                    warm.result()
            pending: deque[tuple[list[RawRecord], Future[Checked]]] = deque()
            for batch in chain(head, iterator):
                if batch:
                    raws = [r.raw for r in batch]
                    pending.append((batch, pool.submit(check_and_seal, raws, self.default_region,
                                                       self.max_record_bytes)))
                while pending and (not batch or len(pending) > 2 * self.workers or pending[0][1].done()):
                    done, future = pending.popleft()
                    yield done, _assemble(done, future.result())
            while pending:
                done, future = pending.popleft()
                yield done, _assemble(done, future.result())

    def ingest(self, records: Iterable[RawRecord], progress: Progress | None = None) -> IngestSummary:
        """Ingest every record; each batch is stored whole or not at all."""
        summary = IngestSummary()
        started = time.perf_counter()
        with _few_collections():
            for batch, (accepted, rejected) in self.validated(_batches(records, self.batch_size)):
                outcome = self.store.append(accepted, rejected)
                summary.read += len(batch)
                summary.accepted += outcome.accepted
                summary.duplicates += outcome.duplicates
                summary.quarantined += outcome.quarantined
                if progress:
                    progress(len(batch))
        summary.seconds = time.perf_counter() - started
        summary.position = self.store.position()
        return summary

    def retry_quarantine(self, progress: Progress | None = None) -> RetrySummary:
        """Validate open quarantine entries again (e.g. after fixing a setting) and
        store those that now pass. Conflicts are left for a person to dismiss."""
        summary = RetrySummary()
        after = 0
        while entries := self.store.quarantine(after_id=after, limit=self.batch_size):
            after = entries[-1].id
            retry = [e for e in entries if e.rejection.code != "conflict"]
            summary.skipped_conflicts += len(entries) - len(retry)
            records = [RawRecord(e.rejection.source, e.rejection.locator, e.rejection.raw) for e in retry]
            checked = check([r.raw for r in records], self.default_region, self.max_record_bytes)
            fixed = [retry[position].id for position in checked.index]
            accepted, rejected = _assemble(records, checked)
            outcome = self.store.append(accepted, resolves=fixed)
            summary.retried += len(retry)
            summary.accepted += outcome.accepted
            summary.duplicates += outcome.duplicates
            summary.still_failing += len(rejected) + outcome.quarantined
            if progress:
                progress(len(entries))
        return summary
