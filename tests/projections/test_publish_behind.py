"""A follower's publish running beside its next derive: it publishes exactly the derive it
was started after, a slot it cannot update is copied whole by the waiter, errors reach
the follower, and a follower's snapshot ends equal to its working file."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from journey.projections import publish_behind as behind_module
from journey.projections.publish import open_snapshot, publish, publish_pinned
from journey.projections.publish_behind import PublishBehind
from journey.projections.slot_checkpoints import SlotCheckpoints
from journey.store.event_store import EventStore
from journey.store.recorder import InMemoryJourneyRecorder
from tests.projections.helpers import append, every_table, project
from tests.touches import touch


def _following(tmp_path: Path):  # noqa: ANN202 - a store, its projector and a snapshot with both slots
    store = EventStore(InMemoryJourneyRecorder())
    append(store, *(touch("call", f"c{n}", customer={"customer_id": f"P{n % 7}"}) for n in range(20)))
    projector = project(store, tmp_path / "working.duckdb")
    snapshot = tmp_path / "analytics.duckdb"
    publish(projector.con, snapshot)
    publish(projector.con, snapshot)
    return store, projector, snapshot


def _next_derive(store: EventStore, projector: object, n: int) -> None:
    append(store, touch("visit", f"v{n}", customer={"customer_id": f"P{n}"}),
           touch("booking", f"b{n}", customer={"customer_id": f"NEW{n}"}))
    projector.catch_up()  # type: ignore[attr-defined]
    assert projector.derive()  # type: ignore[attr-defined]


def _published(snapshot: Path) -> tuple[dict[str, list[tuple[object, ...]]], tuple[object, ...]]:
    with open_snapshot(snapshot) as con:
        return every_table(con), con.execute("SELECT position, derived_position FROM projection_status").fetchone()


def test_a_pinned_publish_shows_its_derive_though_the_next_one_committed_meanwhile(tmp_path: Path) -> None:
    store, projector, snapshot = _following(tmp_path)
    _next_derive(store, projector, 1)
    expected = every_table(projector.con), projector.con.execute(
        "SELECT position, derived_position FROM projection_status").fetchone()
    cursor = projector.con.cursor()
    cursor.begin()
    cursor.execute("SELECT count(*) FROM internal.meta").fetchall()  # pinned here
    _next_derive(store, projector, 2)  # committed on the follower's connection meanwhile
    latest = every_table(projector.con)
    assert latest != expected[0]
    published = publish_pinned(cursor, snapshot)
    assert published is not None and not published.full
    assert _published(snapshot) == expected
    publish(projector.con, snapshot)  # the next publish brings the latest
    assert _published(snapshot)[0] == latest
    projector.close()


def test_the_publish_behind_is_pinned_when_it_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The thread is held before it reads anything until the next derive has committed:
    it still publishes the derive it was started after."""
    store, projector, snapshot = _following(tmp_path)
    release = threading.Event()

    def held(*args: object) -> object:
        release.wait(timeout=30)
        return publish_pinned(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(behind_module, "publish_pinned", held)
    behind: PublishBehind[None] = PublishBehind(projector.con, snapshot, SlotCheckpoints(2**30))
    _next_derive(store, projector, 1)
    expected = every_table(projector.con)
    behind.start(None)
    _next_derive(store, projector, 2)
    release.set()
    finished = behind.finish()
    assert finished is not None and not finished.published.full
    assert _published(snapshot)[0] == expected != every_table(projector.con)
    projector.close()


def test_a_slot_a_reader_holds_is_copied_whole_by_the_waiter(tmp_path: Path) -> None:
    store, projector, snapshot = _following(tmp_path)
    behind: PublishBehind[str] = PublishBehind(projector.con, snapshot, SlotCheckpoints(2**30))
    with open_snapshot(snapshot) as reader:  # on the slot the next publish writes after this one
        _next_derive(store, projector, 1)
        behind.start("first")
        first = behind.finish()
        assert first is not None and first.context == "first" and not first.published.full
        _next_derive(store, projector, 2)
        behind.start("second")  # its slot is the reader's: the thread cannot update it
        second = behind.finish()
        assert second is not None and second.published.full
        assert reader.execute("SELECT count(*) FROM touchpoints").fetchone() == (20,)
    assert _published(snapshot)[0] == every_table(projector.con)
    assert behind.finish() is None
    projector.close()


def test_an_error_of_the_publish_reaches_the_follower(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, projector, snapshot = _following(tmp_path)

    def broken(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(behind_module, "publish_pinned", broken)
    behind: PublishBehind[None] = PublishBehind(projector.con, snapshot, SlotCheckpoints(2**30))
    _next_derive(store, projector, 1)
    behind.start(None)
    with pytest.raises(OSError, match="disk full"):
        behind.finish()
    assert not behind.running
    projector.close()


def test_a_follower_s_snapshot_ends_equal_to_its_working_file(tmp_path: Path) -> None:
    """Batches arrive while the follower derives and publishes behind: after it stops, the
    snapshot holds the last derive, table by table, and every cycle was published."""
    from journey.projections import operations
    from journey.projections.operations import ProjectionPaths
    from journey.projections.projector import Projector
    from journey.store.sqlite import open_sqlite
    from tests.projections.helpers import PSEUDONYMS

    store = EventStore(open_sqlite(str(tmp_path / "events.sqlite")))
    paths = ProjectionPaths(tmp_path / "projection.duckdb", tmp_path / "analytics.duckdb")
    append(store, *(touch("call", f"c{n}", customer={"customer_id": f"P{n % 5}"}) for n in range(10)))
    stop = threading.Event()
    reads: list[int] = []

    def on_cycle(result: object) -> None:
        reads.append(result.read)  # type: ignore[attr-defined]
        n = len(reads)
        if n <= 6:  # a batch lands while the previous one is being published
            append(store, touch("visit", f"v{n}", customer={"customer_id": f"P{n % 5}"}),
                   touch("identity_link", f"l{n}", customer={"customer_id": f"P{n % 5}", "phone": f"+7916000000{n}"}))
        elif not result.read:  # type: ignore[attr-defined]
            stop.set()

    operations.follow(store, paths, PSEUDONYMS, interval=0.01, stop=stop, on_cycle=on_cycle)
    assert sum(reads) == 10 + 12
    projector = Projector(store, paths.working, PSEUDONYMS)
    try:
        assert _published(paths.snapshot)[0] == every_table(projector.con)
        assert _published(paths.snapshot)[1][1] == projector.position == 22
    finally:
        projector.close()
