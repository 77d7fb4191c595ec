"""Bringing a store written before sealing (v1 events, all in the clear) under sealing."""

from __future__ import annotations

from pathlib import Path

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from journey.crypto.keys import SQLiteKeyStore
from journey.domain.events import TouchRecorded, stream_id
from journey.domain.touch import parse_touch
from journey.errors import InputError
from journey.privacy.forget import forget
from journey.privacy.reseal import reseal
from journey.store.event_store import EventStore
from journey.store.sqlite import open_sqlite
from tests.stores import WRAP, sealed
from tests.touches import raw, touch

OLD = [
    touch("booking", "b1", customer={"customer_id": "CRM-OLGA", "phone": "+79165551234"}),
    touch("custom", "c1", activity="called", customer={"customer_id": "CRM-OLGA"},
          properties={"note": "Smirnova Olga asked about implants", "branch": "north"}),
    touch("review", "r1", customer={"customer_id": "CRM-BORIS"}, properties={"platform": "maps", "text": "Fine"}),
]
AT = "2024-01-02T03:04:05+00:00"


def v1_store(path: Path) -> EventStore:
    """A store as journey wrote it before sealing: class_version 1 states, in the clear."""
    recorder = open_sqlite(str(path))
    topic = get_topic(TouchRecorded)
    events = []
    for record in OLD:
        content = parse_touch(raw(record)).content_json()
        events.append(StoredEvent(stream_id(record["event_id"]), 1, topic,
                                  b'{"touch":' + content + b',"recorded_at":"' + AT.encode() + b'"}'))
    recorder.append(events)
    return EventStore(recorder)


def test_an_old_store_is_copied_sealed_and_then_forgetting_covers_it(tmp_path: Path) -> None:
    old = v1_store(tmp_path / "old.sqlite")
    written = b"".join(p.read_bytes() for p in tmp_path.glob("old.sqlite*"))  # the database and its WAL
    assert b"Smirnova Olga" in written  # why the copy is needed
    upcast = {e.event_id: e for _, e in old.read()}  # v1 reads as v2 unchanged
    assert upcast["c1"].touch["properties"]["note"].startswith("Smirnova")

    keys = SQLiteKeyStore(str(tmp_path / "keys.sqlite"), WRAP)
    new = sealed(open_sqlite(str(tmp_path / "new.sqlite")), keys)
    summary = reseal(old, new)
    assert (summary.read, summary.written, summary.already_there) == (3, 3, 0)
    copied = {e.event_id: e for _, e in new.read()}
    assert {k: (e.touch, e.recorded_at) for k, e in copied.items()} == {
        k: (e.touch, e.recorded_at) for k, e in upcast.items()}
    assert reseal(old, new).already_there == 3  # safe to run again

    forget(new, ("customer_id", "CRM-OLGA"))
    new.recorder.datastore.close()
    keys.close()
    data = b"".join(p.read_bytes() for p in [*tmp_path.glob("new.sqlite*"), *tmp_path.glob("keys.sqlite*")])
    for secret in (b"CRM-OLGA", b"79165551234", b"Smirnova Olga", b"CRM-BORIS", b"Fine"):
        assert secret not in data, secret
    assert b'"branch":"north"' in data  # declared analytic in the shipped policy


def test_the_target_must_be_a_new_sealing_store(tmp_path: Path) -> None:
    old = v1_store(tmp_path / "old.sqlite")
    with pytest.raises(InputError, match="does not seal"):
        reseal(old, EventStore(open_sqlite(str(tmp_path / "plain.sqlite"))))
    with pytest.raises(InputError, match="new store"):
        reseal(old, EventStore(old.recorder, sealed(old.recorder).sealer))
