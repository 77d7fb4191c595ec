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
    return _check_and_seal_with(_worker_sealer, raws, default_region, max_bytes)


def _check_and_seal_with(sealer: Sealer | None, raws: Sequence[bytes], default_region: str | None,
                         max_bytes: int) -> Checked:
    """Validate a batch and, given a ``sealer``, seal its accepted touches: a worker's
    task, and the writer's when it would otherwise wait for a worker."""
    identifiers: list[tuple[tuple[str, str], ...] | None] = []
    checked = check(raws, default_region, max_bytes, identifiers=identifiers)
    if sealer is None or not checked.index:
        return checked
    return checked._replace(sealed=Packed.of(sealer.seal_all(checked.content.items(), identifiers)))


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


_AHEAD_HERE = 2
"""Batches the writer checks itself that may wait, done, behind a worker's batch."""


def _ready_result(result: Future[Checked] | Checked) -> bool:
    """Whether a pending batch's result can be handed over without waiting."""
    return not isinstance(result, Future) or result.done()


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
        in worker processes, up to ``2 * workers + 1`` batches ahead, while the caller
        stores, and in this process while it would wait for them (``_in_order``); a
        single batch is validated here (no worker start-up).

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
            here = self.sealing.open() if self.sealing is not None else None
            try:
                yield from self._in_order(pool, chain(head, iterator), here)
            finally:
                if here is not None:
                    here.keys.close()

    def _in_order(self, pool: ProcessPoolExecutor, batches: Iterator[list[RawRecord]], here: Sealer | None,
                  ) -> Iterator[tuple[list[RawRecord], tuple[Touches, list[Rejection]]]]:
        """The batches' results in input order, from ``2 * workers + 1`` batches kept at
        the workers and, while the oldest of those is not back and the writer has nothing
        to store, from batches the writer checks (and seals, with ``here``) itself:
        waiting for the workers left it idle half the time (measured). A batch checked
        here waits behind the older ones, at most ``_AHEAD_HERE`` of them at a time."""
        pending: deque[tuple[list[RawRecord], Future[Checked] | Checked]] = deque()
        at_workers = 2 * self.workers + 1
        exhausted = False
        while True:
            while pending and _ready_result(pending[0][1]):
                yield self._result(pending.popleft())
            sent = sum(isinstance(result, Future) for _, result in pending)
            work_here = bool(pending) and len(pending) - sent < _AHEAD_HERE
            if not exhausted and (sent < at_workers or work_here):
                batch = next(batches, None)
                if batch is None:
                    exhausted = True
                elif not batch:  # a tick: hand over everything in flight now
                    while pending:
                        yield self._result(pending.popleft())
                elif sent < at_workers:
                    pending.append((batch, pool.submit(check_and_seal, [r.raw for r in batch],
                                                       self.default_region, self.max_record_bytes)))
                else:
                    pending.append((batch, _check_and_seal_with(here, [r.raw for r in batch],
                                                                self.default_region, self.max_record_bytes)))
                continue
            if not pending:
                return
            yield self._result(pending.popleft())

    @staticmethod
    def _result(entry: tuple[list[RawRecord], Future[Checked] | Checked],
                ) -> tuple[list[RawRecord], tuple[Touches, list[Rejection]]]:
        """A pending batch and its result (waiting for its worker if need be)."""
        batch, result = entry
        return batch, _assemble(batch, result.result() if isinstance(result, Future) else result)

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
