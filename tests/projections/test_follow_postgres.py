"""No event is ever skipped on PostgreSQL: several writers, one follower.

The follower reads "every notification id after the last one I have". That is only
safe if no transaction can commit a higher id while a lower one is still to come;
``docs/design.md`` ("No event skipped on PostgreSQL") says what guarantees it. These
tests run real writers on their own connections against a real PostgreSQL schema and
compare what the projector holds with what PostgreSQL stored.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from journey.domain.touch import parse_touch
from journey.projections.projector import Projector
from journey.store.event_store import EventStore, Submission
from journey.store.postgres import PostgresJourneyRecorder, open_postgres
from tests.projections.helpers import PSEUDONYMS
from tests.touches import raw, touch

pytestmark = pytest.mark.postgres

WRITERS, BATCHES, PER_BATCH = 4, 50, 5


def submissions(prefix: str, count: int) -> list[Submission]:
    return [Submission.of(parse_touch(raw(touch("call", f"{prefix}-{i}", customer={"customer_id": f"P-{i % 7}"}))))
            for i in range(count)]


def stored_events(store: EventStore, prefix: str, count: int) -> list[StoredEvent]:
    """The stored form of ``count`` touches, as the store would insert them."""
    when = datetime.now(timezone.utc).isoformat()
    return store.mapper.stored_touches(((s.type, s.event_id, s.content, s.sealed)
                                        for s in submissions(prefix, count)), when)


def open_store(url: str, request: pytest.FixtureRequest) -> EventStore:
    """A store on its own connection pool, as another process would have."""
    recorder = open_postgres(url)
    request.addfinalizer(recorder.datastore.close)
    return EventStore(recorder)


def stored_ids(store: EventStore) -> list[int]:
    recorder = store.recorder
    assert isinstance(recorder, PostgresJourneyRecorder)
    with recorder.datastore.transaction() as curs:
        curs.execute(f"SELECT notification_id FROM {recorder.events} ORDER BY notification_id")
        return [row["notification_id"] for row in curs.fetchall()]


def projected_positions(path: Path) -> list[int]:
    with duckdb.connect(str(path), read_only=True) as con:
        return [row[0] for row in con.execute("SELECT position FROM internal.touches ORDER BY position").fetchall()]


def test_a_follower_beside_four_writers_holds_every_stored_event_exactly_once(
        pg_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Four writers append 50 batches of 5 touches each, on their own connections; a
    projector follows them (small batches), and beside it a bare tailer reads the way
    the projector reads (``select_lines`` after the last position seen) as fast as it
    can, to read at as many moments of the writing as possible."""
    started = time.monotonic()
    follower_store, tailer_store = open_store(pg_url, request), open_store(pg_url, request)
    projector = Projector(follower_store, tmp_path / "projection.duckdb", PSEUDONYMS, batch_size=50)
    writing, stop = threading.Event(), threading.Event()
    projector_reads: list[int] = []  # the projector's batches read while the writers wrote
    tailed: list[int] = []
    tailer_reads: list[int] = []
    errors: list[BaseException] = []

    def read(events: int) -> None:
        if writing.is_set():
            projector_reads.append(events)

    def follow() -> None:
        try:
            while not stop.is_set():
                projector.catch_up(progress=read)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    def tail() -> None:
        try:
            while not stop.is_set():
                positions, _ = tailer_store.recorder.select_lines((tailed or [0])[-1] + 1, 100)
                tailed.extend(positions)
                if positions and writing.is_set():
                    tailer_reads.append(len(positions))
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    def write(n: int, store: EventStore) -> None:
        try:
            for batch in range(BATCHES):
                outcome = store.append(submissions(f"w{n}-b{batch}", PER_BATCH))
                assert outcome.accepted == PER_BATCH, outcome
                time.sleep(0.002)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    writer_stores = [open_store(pg_url, request) for _ in range(WRITERS)]  # each its own connections
    readers = [threading.Thread(target=follow), threading.Thread(target=tail)]
    writers = [threading.Thread(target=write, args=(n, s)) for n, s in enumerate(writer_stores)]
    writing.set()
    for thread in [*readers, *writers]:
        thread.start()
    for thread in writers:
        thread.join(timeout=60)
    writing.clear()
    stop.set()
    for thread in readers:
        thread.join(timeout=60)
    assert not errors, errors
    projector.catch_up()  # what the follower had not read yet when it stopped
    projector.close()
    tailed.extend(tailer_store.recorder.select_lines((tailed or [0])[-1] + 1, 10_000)[0])

    stored = stored_ids(follower_store)
    assert len(stored) == WRITERS * BATCHES * PER_BATCH
    assert projected_positions(tmp_path / "projection.duckdb") == stored  # each id once: none skipped, none twice
    assert tailed == stored
    assert len(projector_reads) >= 3 and len(tailer_reads) >= 50, (len(projector_reads), len(tailer_reads))
    assert time.monotonic() - started < 20


def test_a_writer_waits_while_an_earlier_insert_is_uncommitted(
        pg_url: str, request: pytest.FixtureRequest) -> None:
    """The insert path takes ``LOCK TABLE ... IN EXCLUSIVE MODE`` until commit: a second
    writer cannot take a higher id and commit it before the first one commits."""
    holder, writer, reader = (open_store(pg_url, request) for _ in range(3))
    recorder = holder.recorder
    assert isinstance(recorder, PostgresJourneyRecorder)
    later: list[Any] = []
    second = threading.Thread(target=lambda: later.append(writer.append(submissions("later", 3))))
    with recorder.datastore.transaction(commit=True) as curs:
        recorder._insert_stored_events(curs, stored_events(holder, "held", 2))  # the production insert
        held = [row["notification_id"] for row in curs.fetchall()]
        second.start()
        waiting = _wait_for_lock_waiter(pg_url, recorder.events)
        assert waiting, "the second writer should be waiting for the table lock"
        assert second.is_alive() and not later
        assert reader.position() == 0  # nothing committed: a follower reads nothing yet
    second.join(timeout=30)
    [outcome] = later
    assert min(outcome.positions) > max(held)
    assert stored_ids(reader) == [*held, *outcome.positions]


def test_without_the_table_lock_a_follower_would_skip_an_event(
        pg_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The control: plain INSERTs (no table lock) let a higher id commit first, and a
    follower that read it never reads the lower one. This is what the lock prevents."""
    store = open_store(pg_url, request)
    recorder = store.recorder
    assert isinstance(recorder, PostgresJourneyRecorder)
    insert = (f"INSERT INTO {recorder.events} (originator_id, originator_version, topic, state) "
              "VALUES (%s, %s, %s, %s) RETURNING notification_id")
    base = pg_url.split("?")[0]
    [early] = stored_events(store, "early", 1)
    [late] = stored_events(store, "late", 1)
    projector = Projector(store, tmp_path / "projection.duckdb", PSEUDONYMS)
    try:
        with psycopg.connect(base) as first, psycopg.connect(base, autocommit=True) as second:
            low = first.execute(insert, (early.originator_id, 1, early.topic, early.state)).fetchone()[0]
            high = second.execute(insert, (late.originator_id, 1, late.topic, late.state)).fetchone()[0]
            assert high > low
            assert projector.catch_up().position == high  # the follower moved past the uncommitted id
            first.commit()
        assert projector.catch_up().read == 0
        assert projected_positions_open(projector) == [high]
        assert stored_ids(store) == [low, high]  # stored, and never projected
    finally:
        projector.close()


def projected_positions_open(projector: Projector) -> list[int]:
    return [row[0] for row in projector.con.execute("SELECT position FROM internal.touches ORDER BY 1").fetchall()]


def _wait_for_lock_waiter(url: str, table: str, timeout: float = 10.0) -> bool:
    """Whether a session is seen waiting for a lock on ``table`` within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url.split("?")[0], autocommit=True) as con:
        while time.monotonic() < deadline:
            row = con.execute(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass", (table,)
            ).fetchone()
            if row and row[0]:
                return True
            time.sleep(0.05)
    return False
