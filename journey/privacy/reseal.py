"""Bringing an event store written before sealing under sealing: a one-time copy.

Events stored before sealing (``class_version`` 1, every field in the clear) read as
v2 unchanged (the upcast ``Recorded.upcast_v1_v2``), so journey keeps reading an old
store. But their bytes hold phones and names in the clear, and destroying a key
cannot make clear bytes unreadable. ``reseal`` copies every event, in store order,
into a *new* store that seals (the same key store, so customers keep their keys):
each touch is read (upcast, opened if sealed already), sealed with its customer's
keys and appended with its original ``recorded_at``. History is not rewritten: the
old store is left as it was, for the operator to retire once the copy is checked.

What it cannot cover: the old store itself until it is deleted (and its file system
or PostgreSQL WAL/backups until they expire), backups and exports made before, and
the quarantine (refused records are not events; fix or dismiss them first). Upstream
positions (Kafka tracking) are not copied: point the worker at the new store only
after the copy, and it resumes from the consumer group's committed offsets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby

import orjson

from journey.domain.events import Recorded
from journey.errors import InputError
from journey.store.event_store import EventStore, Submission

__all__ = ["ResealSummary", "reseal"]


@dataclass
class ResealSummary:
    read: int = 0
    written: int = 0
    already_there: int = 0
    erased: int = 0


def reseal(source: EventStore, target: EventStore, *, batch: int = 5000,
           progress: Callable[[int], None] | None = None) -> ResealSummary:
    """Copy every event of ``source`` into ``target`` (which must seal), sealed.

    Safe to run again after an interruption: events already copied are duplicates."""
    if target.sealer is None:
        raise InputError("the target store does not seal; open it with a key store (journey's default wiring)")
    if target.recorder is source.recorder:
        raise InputError("the target must be a new store, not the store being copied")
    summary = ResealSummary()
    for recorded_at, events in groupby(_events(source), key=lambda e: e.recorded_at):
        chunk = list(events)
        for start in range(0, len(chunk), batch):
            part = chunk[start:start + batch]
            outcome = target.append([_submission(e) for e in part], recorded_at=datetime.fromisoformat(recorded_at))
            summary.read += len(part)
            summary.written += outcome.accepted
            summary.already_there += outcome.duplicates
            summary.erased += sum(1 for e in part if e.erased)
            if progress:
                progress(len(part))
    return summary


def _events(store: EventStore) -> Iterator[Recorded]:
    return (event for _, event in store.read())


def _submission(event: Recorded) -> Submission:
    touch = event.touch
    content = orjson.dumps(touch)
    return Submission(touch["event_id"], touch["type"], content, "reseal", event.recorded_at, content)
