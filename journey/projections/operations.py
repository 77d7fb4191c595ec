"""What ``journey project``, ``journey project --follow``, ``journey rebuild`` and
``journey project --as-of`` do, on explicit paths (the CLI wires them from settings)."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from threading import Event

from journey.errors import ProjectionError
from journey.projections.projector import CatchUp, Derived, Projector
from journey.crypto.pseudonym import Pseudonymiser
from journey.projections.stage_model import load_stage_model
from journey.projections.publish import SLOT_WAL_BACKGROUND, is_published, projector_lock, publish
from journey.projections.publish_behind import Finished, PublishBehind
from journey.projections.slot_checkpoints import SlotCheckpoints
from journey.store.event_store import EventStore

__all__ = ["ProjectionPaths", "build_as_of", "catch_up", "follow", "rebuild", "rederive"]

log = logging.getLogger("journey.projector")
Progress = Callable[[int], None]


@dataclass(frozen=True)
class ProjectionPaths:
    working: Path
    """The projector's own DuckDB file (one writer)."""
    snapshot: Path
    """The published, read-only file analysts open."""
    batch_size: int = 245_760
    """Events per projector transaction."""
    memory_limit: str = "2GB"
    """DuckDB's memory limit for the projector (it spills to disk beyond it)."""
    stage_model: Path | None = None
    """The stage model file (``JOURNEY_STAGE_MODEL``); None is the default model."""


def _projector(store: EventStore, path: Path, pseudonyms: Pseudonymiser, paths: ProjectionPaths) -> Projector:
    return Projector(store, path, pseudonyms, batch_size=paths.batch_size, memory_limit=paths.memory_limit,
                     stage_model=load_stage_model(paths.stage_model))


def catch_up(store: EventStore, paths: ProjectionPaths, pseudonyms: Pseudonymiser,
             progress: Progress | None = None) -> CatchUp:
    """Catch up, derive, publish, exit. A poison event stops it with a clear error."""
    with projector_lock(paths.working):
        projector = _projector(store, paths.working, pseudonyms, paths)
        try:
            result = projector.catch_up(progress=progress)
            if projector.derive() or not is_published(projector.con, paths.snapshot):
                publish(projector.con, paths.snapshot)
            return result
        finally:
            projector.close()


@contextmanager
def _stop_on_signals(stop: Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop`` (only the main thread may handle signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _frame: object) -> None:
        log.info("received %s: finishing the current batch, then stopping", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def follow(store: EventStore, paths: ProjectionPaths, pseudonyms: Pseudonymiser, *,
           interval: float = 1.0, stop: Event | None = None,
           on_cycle: Callable[[CatchUp], None] | None = None) -> None:
    """Keep following the store until SIGINT, SIGTERM or ``stop``: a cycle that loaded
    something is followed at once by the next (what arrived meanwhile waits for no
    poll), a cycle that found nothing by a pause of ``interval`` seconds (after folding
    the working file's write-ahead log into it if it is large: ``Projector.checkpoint_logged``,
    so a burst does not pay the checkpoint inside its derive). Poison events
    go to ``dead_letters`` and the rest goes on. Each derive is published while the next
    cycle loads and derives (``publish_behind``); each cycle that loaded something logs one
    INFO line once its publish is done: events read, new position, store head, lag, and
    the seconds spent loading, deriving and publishing."""
    stop = stop or Event()
    with projector_lock(paths.working), _stop_on_signals(stop):
        projector = _projector(store, paths.working, pseudonyms, paths)
        checkpoints = SlotCheckpoints(SLOT_WAL_BACKGROUND)
        behind: PublishBehind[_Cycle] = PublishBehind(projector.con, paths.snapshot, checkpoints)
        log.info("following the event store from position %s; Ctrl-C or SIGTERM stops", projector.position)
        try:
            while not stop.is_set():
                result = projector.catch_up(dead_letter=True, stop=stop)
                for poison in result.poison:
                    log.warning("position %s (%s) sent to dead_letters: %s",
                                poison.position, poison.event_id, poison.reason)
                _cycle(projector, behind, result, store.position())
                if on_cycle:
                    on_cycle(result)
                if not result.read:  # caught up: tidy the working file, poll again after the interval
                    _log_cycle(behind.finish())
                    _checkpoint_idle(projector)
                    stop.wait(interval)
        finally:
            try:
                _log_cycle(behind.finish())
            finally:
                checkpoints.wait()
                projector.close()


@dataclass(frozen=True)
class _Cycle:
    """What a follower's cycle did before its publish (logged when the publish is done)."""

    result: CatchUp
    head: int
    derived: Derived | None
    deriving: float


def _cycle(projector: Projector, behind: PublishBehind[_Cycle], result: CatchUp, head: int) -> None:
    """Derive if the base moved on and publish that derive behind (after the publish in
    flight; a full derive is published here, whole); with nothing to derive, publish here
    if the snapshot does not show the last derive."""
    if behind.running and projector.derives_in_full():
        _log_cycle(behind.finish())  # a full derive replaces the logs that publish prunes
    started = time.perf_counter()
    derived = projector.derive()
    deriving = time.perf_counter() - started
    _log_cycle(behind.finish())
    cycle = _Cycle(result, head, projector.last_derive, deriving)
    if derived and projector.last_derive.since is not None:  # type: ignore[union-attr]
        behind.start(cycle)
    elif derived:  # in full (an erasure, say): copied whole at once, not a cycle later
        started = time.perf_counter()
        published = publish(projector.con, behind.snapshot, behind.checkpoints)
        _log_cycle(Finished(cycle, time.perf_counter() - started, published))
    elif not is_published(projector.con, behind.snapshot):
        publish(projector.con, behind.snapshot, behind.checkpoints)
        log.info("published position %s to %s", projector.position, behind.snapshot)


def _checkpoint_idle(projector: Projector) -> None:
    started = time.perf_counter()
    if projector.checkpoint_logged():
        log.info("checkpointed the working file while idle in %.2f s", time.perf_counter() - started)


def _log_cycle(finished: Finished[_Cycle] | None) -> None:
    if finished is None:
        return
    cycle, published = finished.context, finished.published
    if not cycle.result.read:
        log.info("published position %s to %s", cycle.result.position, published.slot.name)
        return
    derived = cycle.derived
    how = "in full" if derived is None or derived.since is None else f"{derived.customers:,} customers"
    copied = " (whole copy)" if published.full else " (changes only)"
    log.info("read %s events to position %s; store head %s, lag %s events; load %.2f s, "
             "derive %.2f s (%s), publish %.2f s%s", cycle.result.read, cycle.result.position, cycle.head,
             cycle.head - cycle.result.position, cycle.result.seconds, cycle.deriving, how, finished.seconds, copied)


def rebuild(store: EventStore, paths: ProjectionPaths, pseudonyms: Pseudonymiser,
            progress: Progress | None = None) -> CatchUp:
    """Build from scratch into a new file, then swap it in (blue/green) and publish.

    Readers never see a half-built database; a poison event stops the rebuild
    and leaves the current projection as it was.
    """
    with projector_lock(paths.working):
        fresh = paths.working.with_name(paths.working.name + ".rebuild")
        fresh.unlink(missing_ok=True)
        Path(str(fresh) + ".wal").unlink(missing_ok=True)
        projector = _projector(store, fresh, pseudonyms, paths)
        try:
            result = projector.catch_up(progress=progress)
            projector.derive(force=True)
            projector.con.execute("CHECKPOINT")
        except BaseException:
            projector.close()
            fresh.unlink(missing_ok=True)
            raise
        projector.close()
        Path(str(paths.working) + ".wal").unlink(missing_ok=True)  # an old log (a crash) spoils a new file
        os.replace(fresh, paths.working)
        published = _projector(store, paths.working, pseudonyms, paths)
        try:
            publish(published.con, paths.snapshot)
        finally:
            published.close()
        return result


def rederive(store: EventStore, paths: ProjectionPaths, pseudonyms: Pseudonymiser,
             stage_model: Path | None = None) -> int:
    """Derive the analyst tables again from the projector's base under ``stage_model``
    (for this derive only; default ``paths.stage_model``) and publish them. Nothing is
    read from the event store: no event is loaded again. Returns the projected position
    the tables reflect."""
    if stage_model is not None:
        load_stage_model(stage_model)  # a clear error before taking the lock
        paths = replace(paths, stage_model=stage_model)
    if not paths.working.exists():
        raise ProjectionError(f"there is no projection at {paths.working} yet; run `journey project`")
    with projector_lock(paths.working):
        projector = _projector(store, paths.working, pseudonyms, paths)
        try:
            projector.derive(force=True)
            publish(projector.con, paths.snapshot)
            return projector.position
        finally:
            projector.close()


def build_as_of(store: EventStore, out: Path, as_of: datetime, pseudonyms: Pseudonymiser,
                progress: Progress | None = None, stage_model: Path | None = None) -> CatchUp:
    """The projection of what was known at ``as_of`` (events recorded up to it), in ``out``."""
    if out.exists():
        out.unlink()
    projector = Projector(store, out, pseudonyms, as_of=as_of, stage_model=load_stage_model(stage_model))
    try:
        result = projector.catch_up(progress=progress)
        projector.derive(force=True)
        return result
    finally:
        projector.close()
