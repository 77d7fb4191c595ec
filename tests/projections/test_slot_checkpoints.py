"""A follower's slots checkpointed in the background: the log folded into the file, the
data unchanged, a reader holding the slot left alone, and the next publish still an update."""

from __future__ import annotations

from pathlib import Path

import duckdb

from journey.projections.publish import open_snapshot, publish, slot_paths
from journey.projections.slot_checkpoints import SlotCheckpoints
from tests.projections.helpers import append, every_table, project
from tests.touches import touch


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _slot_with_log(tmp_path: Path) -> Path:
    slot = tmp_path / "slot.duckdb"
    con = duckdb.connect(str(slot))
    con.execute("CREATE TABLE t AS SELECT range AS n FROM range(100)")
    con.execute("CHECKPOINT")
    con.execute("INSERT INTO t SELECT range + 100 FROM range(50)")
    con.execute("PRAGMA disable_checkpoint_on_shutdown")
    con.close()
    assert _wal(slot).stat().st_size > 0
    return slot


def _rows(slot: Path) -> list[tuple[int, ...]]:
    with duckdb.connect(str(slot), read_only=True) as con:
        return con.execute("SELECT count(*), sum(n) FROM t").fetchall()


def test_a_slot_past_the_limit_is_checkpointed_and_keeps_its_rows(tmp_path: Path) -> None:
    slot = _slot_with_log(tmp_path)
    assert not SlotCheckpoints(limit=2**30).start(slot)  # under the limit: left alone
    assert _wal(slot).exists()
    checkpoints = SlotCheckpoints(limit=0)
    assert checkpoints.start(slot)
    checkpoints.wait()
    assert not _wal(slot).exists()
    assert _rows(slot) == [(150, sum(range(150)))]


def test_a_slot_a_reader_holds_is_left_for_the_publish(tmp_path: Path) -> None:
    slot = _slot_with_log(tmp_path)
    checkpoints = SlotCheckpoints(limit=0)
    with duckdb.connect(str(slot), read_only=True) as reader:
        assert checkpoints.start(slot)
        checkpoints.wait()
        assert reader.execute("SELECT count(*) FROM t").fetchone() == (150,)
    assert _wal(slot).exists()  # not checkpointed, nothing lost
    assert _rows(slot) == [(150, sum(range(150)))]


def test_a_follower_s_publishes_update_slots_checkpointed_behind_them(tmp_path: Path) -> None:
    """Each publish leaves the slot the link left checkpointed in the background; the next
    publish into it waits, finds it whole with no log, and updates it with the changes only."""
    from journey.store.event_store import EventStore
    from journey.store.recorder import InMemoryJourneyRecorder

    store = EventStore(InMemoryJourneyRecorder())
    append(store, *(touch("call", f"c{n}", customer={"customer_id": f"P{n % 7}"}) for n in range(20)))
    projector = project(store, tmp_path / "working.duckdb")
    snapshot = tmp_path / "analytics.duckdb"
    checkpoints = SlotCheckpoints(limit=0)
    publish(projector.con, snapshot, checkpoints)
    publish(projector.con, snapshot, checkpoints)
    for n in range(4):
        append(store, touch("visit", f"v{n}", customer={"customer_id": f"P{n}"}))
        projector.catch_up()
        projector.derive()
        published = publish(projector.con, snapshot, checkpoints)
        assert not published.full and _wal(published.slot).exists()
        left = next(slot for slot in slot_paths(snapshot) if slot != published.slot)
        checkpoints.wait()
        assert not _wal(left).exists()  # checkpointed behind the publish
        with open_snapshot(snapshot) as con:
            assert every_table(con) == every_table(projector.con)
    projector.close()
