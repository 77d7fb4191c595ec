"""Ingestion: records in, validated in batches, appended atomically; bad ones quarantined.

After any run: ``accepted + duplicates + quarantined == read``.
"""

from __future__ import annotations

import gc
import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from itertools import chain, islice

import orjson

from journey.crypto.sealer import Sealer
from journey.crypto.sealing import SealerSpec
from journey.domain.touch import check_touch
from journey.errors import InvalidTouchError
from journey.ingest.sources import RawRecord
from journey.limits import MAX_RECORD_BYTES
from journey.store.event_store import EventStore, Submission
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


Checked = tuple[list[tuple[int, str, str, bytes, bytes | None]], list[tuple[int, str, str, str | None]]]
"""Per batch: accepted ``(index, event_id, type, content, sealed content or None)`` and
rejected ``(index, code, reason, event_id)``; small and cheap to send between processes."""

_FEW_COLLECTIONS = (200_000, 50, 1000)
"""gc thresholds while ingesting (see ``_few_collections``)."""

_worker_sealer: Sealer | None = None
"""In a worker process: its own sealer (its own key-store connection), opened at start."""


def _start_worker(spec: SealerSpec | None) -> None:
    global _worker_sealer
    _worker_sealer = spec.open() if spec is not None else None
    # a worker lives for one ingest: collect as rarely as the writer does (measured: the
    # default thresholds cost 8% of the encrypted rate, rescanning the worker's key caches)
    gc.freeze()
    gc.set_threshold(*_FEW_COLLECTIONS)


def _ready() -> bool:
    """A no-op task: returns once this worker has started (its initializer has run)."""
    return True


def check_and_seal(raws: Sequence[bytes], default_region: str | None, max_bytes: int) -> Checked:
    """In a worker: validate a batch, then seal its accepted touches with this
    worker's sealer, so the writing process only appends."""
    identifiers: list[tuple[tuple[str, str], ...] | None] = []
    accepted, rejected = check(raws, default_region, max_bytes, identifiers=identifiers)
    if _worker_sealer is not None and accepted:
        sealed = _worker_sealer.seal_all([a[3] for a in accepted], identifiers)
        accepted = [(*a[:4], s) for a, s in zip(accepted, sealed)]
    return accepted, rejected


def check(raws: Sequence[bytes], default_region: str | None, max_bytes: int, *,
          identifiers: list[tuple[tuple[str, str], ...] | None] | None = None) -> Checked:
    """Validate a batch of raw records. A pure function, so it can run in a worker.
    ``identifiers`` (a list) gets each accepted touch's customer identifiers, for sealing."""
    accepted: list[tuple[int, str, str, bytes, bytes | None]] = []
    rejected: list[tuple[int, str, str, str | None]] = []
    for index, raw in enumerate(raws):
        try:
            touch = check_touch(raw, default_region=default_region, max_bytes=max_bytes)
        except InvalidTouchError as error:
            event_id = None if error.code == "oversized" else _event_id_of(raw)
            rejected.append((index, error.code, error.reason, event_id))
        else:
            accepted.append((index, touch.event_id, touch.type, touch.content, None))
            if identifiers is not None:
                identifiers.append(touch.identifiers)
    return accepted, rejected


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


def _assemble(batch: Sequence[RawRecord], checked: Checked) -> tuple[list[Submission], list[Rejection]]:
    accepted, rejected = checked
    submissions = []
    for index, event_id, type_, content, sealed in accepted:
        record = batch[index]
        submissions.append(Submission(event_id, type_, content, record.source, record.locator, record.raw, sealed))
    rejections = []
    for index, code, reason, event_id in rejected:
        record = batch[index]
        rejections.append(Rejection(record.source, record.locator, record.raw, code, reason, event_id))
    return submissions, rejections


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

    def validate(self, batch: Sequence[RawRecord]) -> tuple[list[Submission], list[Rejection]]:
        """Validate a batch here, in this process."""
        return _assemble(batch, check([r.raw for r in batch], self.default_region, self.max_record_bytes))

    def validated(
        self, batches: Iterable[list[RawRecord]], *, stream: bool = False
    ) -> Iterator[tuple[list[RawRecord], tuple[list[Submission], list[Rejection]]]]:
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
                                 initargs=(self.sealing,)) as pool:
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
            fixed = [retry[index].id for index, *_ in checked[0]]
            accepted, rejected = _assemble(records, checked)
            outcome = self.store.append(accepted, resolves=fixed)
            summary.retried += len(retry)
            summary.accepted += outcome.accepted
            summary.duplicates += outcome.duplicates
            summary.still_failing += len(rejected) + outcome.quarantined
            if progress:
                progress(len(entries))
        return summary
