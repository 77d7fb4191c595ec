"""The one reader of the published snapshot: read-only, no file system access, and a
writable output file only where asked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from journey.errors import ProjectionError
from journey.projections.publish import OUTPUT, open_snapshot, projection_status, query
from journey.projections.reading import require_table


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    path = tmp_path / "analytics.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE customers AS SELECT range AS n FROM range(5)")
    con.execute("CREATE TABLE projection_status AS SELECT 42 AS position, TIMESTAMPTZ '2025-01-01 00:00Z' AS updated_at")
    con.execute("CREATE TABLE dead_letters (position BIGINT)")
    con.close()
    return path


def test_it_reads_and_refuses_every_write_and_every_file(snapshot: Path, tmp_path: Path) -> None:
    assert query(snapshot, "SELECT count(*) FROM customers") == (["count_star()"], [(5,)])
    for statement, words in [("DROP TABLE customers", "read-only"),
                             (f"COPY customers TO '{tmp_path / 'leak.csv'}'", "file system operations are disabled"),
                             (f"ATTACH '{tmp_path / 'x.duckdb'}' AS x", "disabled"),
                             ("SET enable_external_access = true", "locked")]:
        with pytest.raises(ProjectionError, match=words):
            query(snapshot, statement)
    assert not (tmp_path / "leak.csv").exists() and not (tmp_path / "x.duckdb").exists()


def test_an_output_file_is_writable_beside_the_read_only_snapshot(snapshot: Path, tmp_path: Path) -> None:
    out = tmp_path / "saved" / "ideal.duckdb"
    with open_snapshot(snapshot, output=out) as con:
        con.execute(f"CREATE TABLE {OUTPUT}.main.big AS SELECT n FROM customers WHERE n > 2")
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("CREATE TABLE customers_copy AS SELECT 1")
    assert duckdb.connect(str(out), read_only=True).execute("SELECT count(*) FROM big").fetchone() == (2,)


def test_without_a_projection_it_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ProjectionError, match="run `journey project`"):
        query(tmp_path / "missing.duckdb", "SELECT 1")
    assert projection_status(tmp_path / "missing.duckdb") is None


def test_status_and_a_missing_table(snapshot: Path) -> None:
    status = projection_status(snapshot)
    assert status is not None and (status["position"], status["dead_letters"]) == (42, 0)
    assert status["updated_at"] == datetime(2025, 1, 1, tzinfo=UTC)
    with open_snapshot(snapshot) as con, pytest.raises(ProjectionError, match="journey rederive"):
        require_table(con, "clinic_metrics")


def _published(store_touches: int, tmp_path: Path):  # noqa: ANN202 - a projector and its snapshot
    from journey.store.event_store import EventStore
    from journey.store.recorder import InMemoryJourneyRecorder
    from tests.projections.helpers import append, project
    from tests.touches import touch

    store = EventStore(InMemoryJourneyRecorder())
    append(store, *(touch("call", f"c{n}", customer={"customer_id": f"P{n % 7}"}) for n in range(store_touches)))
    projector = project(store, tmp_path / "working.duckdb")
    return store, projector


def _every_table(path: Path) -> dict[str, list[tuple[object, ...]]]:
    from tests.projections.helpers import every_table

    with open_snapshot(path) as con:
        return every_table(con)


def test_a_publish_after_a_small_batch_copies_only_the_changed_customers(tmp_path: Path) -> None:
    from journey.projections.publish import publish, slot_paths
    from tests.projections.helpers import append, every_table
    from tests.touches import touch

    store, projector = _published(30, tmp_path)
    snapshot = tmp_path / "analytics.duckdb"
    first = publish(projector.con, snapshot)
    second = publish(projector.con, snapshot)  # the other slot, new: a whole copy
    assert first.full and second.full and {first.slot, second.slot} == set(slot_paths(snapshot))
    append(store, touch("visit", "v1", customer={"customer_id": "P3"}),
           touch("booking", "b1", customer={"customer_id": "P-new"}))
    projector.catch_up()
    assert projector.derive() and projector.last_derive is not None and projector.last_derive.customers == 2
    third = publish(projector.con, snapshot)
    assert (third.slot, third.full, third.customers) == (first.slot, False, 2)
    assert snapshot.resolve() == first.slot.resolve()
    assert _every_table(snapshot) == every_table(projector.con)
    assert query(snapshot, "SELECT count(*) FROM touchpoints")[1] == [(32,)]
    projector.close()


def test_each_slot_takes_the_touchpoints_of_the_derives_since_it_from_the_log(tmp_path: Path) -> None:
    """A slot updated after two derives takes each customer's touchpoints as the last of
    them wrote them (a patient dirty in both; a visitor with new rows in the first, merged
    into the patient in the second: no rows left), and the journey variants those derives
    logged (the visitor's variant gone, the patient's new ones); the logs keep only what
    the older slot still needs."""
    from journey.projections.publish import publish
    from tests.projections.helpers import append, every_table
    from tests.touches import touch

    store, projector = _published(30, tmp_path)
    append(store, touch("ad_click", "w1", customer={"anonymous_id": "web-9"}))
    projector.catch_up()
    projector.derive()
    snapshot = tmp_path / "analytics.duckdb"
    publish(projector.con, snapshot)
    publish(projector.con, snapshot)  # both slots whole, the visitor a customer of their own
    visitor = "SELECT count(*) FROM touchpoints WHERE customer_id LIKE 'anonymous_id:%'"
    assert rows_of(snapshot, visitor) == [(1,)]
    batches = [  # the second publish updates the slot the first did not: both derives at once
        [touch("visit", "v1", customer={"customer_id": "P3"}), touch("form", "w2", customer={"anonymous_id": "web-9"})],
        [touch("identity_link", "merge", customer={"customer_id": "P3", "anonymous_id": "web-9"}),
         touch("booking", "b2", customer={"customer_id": "P3"})],
        [touch("call", "c-late", occurred_at="2020-01-01T10:00:00+00:00", customer={"customer_id": "P4"})],
    ]
    for batch in batches:
        append(store, *batch)
        projector.catch_up()
        projector.derive()
        published = publish(projector.con, snapshot)
        assert not published.full
        assert _every_table(snapshot) == every_table(projector.con)
    assert rows_of(snapshot, visitor) == [(0,)]  # the visitor's rows left with the merge
    for log in ("internal.touchpoint_gone", "internal.touchpoint_log", "internal.variant_log"):
        logged = projector.con.execute(f"SELECT DISTINCT derive FROM {log}").fetchall()
        assert len(logged) == 1, log  # the newest derive only: the other slot holds the one before it
    projector.close()


def rows_of(snapshot: Path, sql: str) -> list[tuple[object, ...]]:
    return query(snapshot, sql)[1]


def test_a_reader_on_the_slot_to_write_keeps_its_data_and_the_publish_copies_whole(tmp_path: Path) -> None:
    from journey.projections.publish import publish
    from tests.projections.helpers import append
    from tests.touches import touch

    store, projector = _published(10, tmp_path)
    snapshot = tmp_path / "analytics.duckdb"
    publish(projector.con, snapshot)
    with open_snapshot(snapshot) as reader:  # an analyst keeps the first slot open
        publish(projector.con, snapshot)
        append(store, touch("visit", "v1", customer={"customer_id": "P1"}))
        projector.catch_up()
        projector.derive()
        blocked = publish(projector.con, snapshot)  # the first slot again: held by the reader
        assert blocked.full
        assert reader.execute("SELECT count(*) FROM touchpoints").fetchone() == (10,)
    assert query(snapshot, "SELECT count(*) FROM touchpoints")[1] == [(11,)]
    projector.close()


def test_after_a_full_derive_no_stale_slot_is_left(tmp_path: Path) -> None:
    from journey.projections.publish import publish, slot_paths

    _, projector = _published(10, tmp_path)
    snapshot = tmp_path / "analytics.duckdb"
    publish(projector.con, snapshot)
    publish(projector.con, snapshot)
    assert all(slot.exists() for slot in slot_paths(snapshot))
    projector.derive(force=True)  # an erasure or a new stage model derives in full
    published = publish(projector.con, snapshot)
    assert published.full and [slot.exists() for slot in slot_paths(snapshot)].count(True) == 1
    assert snapshot.resolve() == published.slot.resolve()
    projector.close()


def test_a_rebuilt_working_file_leaves_no_slot_of_the_old_one(tmp_path: Path) -> None:
    from journey.projections.publish import publish, slot_paths
    from tests.projections.helpers import project

    store, projector = _published(10, tmp_path)
    snapshot = tmp_path / "analytics.duckdb"
    publish(projector.con, snapshot)
    publish(projector.con, snapshot)
    projector.close()
    rebuilt = project(store, tmp_path / "rebuilt.duckdb")  # `journey rebuild`: a new working file
    published = publish(rebuilt.con, snapshot)
    assert published.full and [slot for slot in slot_paths(snapshot) if slot.exists()] == [published.slot]
    again = publish(rebuilt.con, snapshot)  # the second slot is new to this file: whole, and the first stays
    assert again.full and all(slot.exists() for slot in slot_paths(snapshot))
    rebuilt.close()


def test_a_full_derive_at_the_same_position_is_never_patched_over(tmp_path: Path) -> None:
    """`journey rederive` after a publish that left one slot: the old slot goes, so the next
    batch cannot patch the old model's rows incrementally."""
    from journey.projections.publish import publish, slot_paths
    from tests.projections.helpers import append, every_table
    from tests.touches import touch

    store, projector = _published(10, tmp_path)
    snapshot = tmp_path / "analytics.duckdb"
    first = publish(projector.con, snapshot)  # one slot only
    projector.derive(force=True)  # rederive: a full derive at the same position
    publish(projector.con, snapshot)
    assert not first.slot.exists()
    append(store, touch("visit", "v1", customer={"customer_id": "P1"}))
    projector.catch_up()
    projector.derive()
    assert publish(projector.con, snapshot).full  # the removed slot comes back whole
    assert _every_table(snapshot) == every_table(projector.con)
    assert all(slot.exists() for slot in slot_paths(snapshot))
    projector.close()


def test_the_link_never_points_at_a_removed_slot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import journey.projections.publish as publishing

    _, projector = _published(10, tmp_path)
    snapshot = tmp_path / "analytics.duckdb"
    publishing.publish(projector.con, snapshot)
    publishing.publish(projector.con, snapshot)
    projector.derive(force=True)
    removed = []
    remove = publishing._remove

    def checked(slot: Path) -> None:
        assert snapshot.resolve() != slot.resolve(), "the link still points at the slot being removed"
        assert query(snapshot, "SELECT count(*) FROM touchpoints")[1] == [(10,)]
        removed.append(slot)
        remove(slot)

    monkeypatch.setattr(publishing, "_remove", checked)
    publishing.publish(projector.con, snapshot)
    assert removed
    projector.close()


def test_a_stale_write_ahead_log_never_spoils_a_copied_slot(tmp_path: Path) -> None:
    from journey.projections.publish import publish, slot_paths

    _, projector = _published(10, tmp_path)
    snapshot = tmp_path / "analytics.duckdb"
    publish(projector.con, snapshot)
    stale = slot_paths(snapshot)[1].with_name(slot_paths(snapshot)[1].name + ".wal")
    stale.write_bytes(b"left by a crash before a checkpoint")
    published = publish(projector.con, snapshot)  # the second slot, copied whole
    assert published.full and published.slot == slot_paths(snapshot)[1] and not stale.exists()
    assert query(snapshot, "SELECT count(*) FROM touchpoints")[1] == [(10,)]
    projector.close()


def test_an_updated_slot_keeps_its_changes_in_its_log_and_readers_see_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A publish that updates a slot leaves the change in the slot's write-ahead log (no
    checkpoint per publish); a read-only reader replays it, in another process as well, and
    once the log passes the limit the slot is checkpointed."""
    import subprocess
    import sys

    import journey.projections.publish as publishing
    from journey.projections.freshness import published_at
    from tests.projections.helpers import append, every_table
    from tests.touches import touch

    store, projector = _published(30, tmp_path)
    snapshot = tmp_path / "analytics.duckdb"
    for _ in range(2):  # both slots, copied whole: no log beside them
        whole = publishing.publish(projector.con, snapshot)
        assert whole.full and not publishing._wal(whole.slot).exists()
    for n in range(3):
        append(store, touch("visit", f"v{n}", customer={"customer_id": f"P{n}"}))
        projector.catch_up()
        projector.derive()
        before = datetime.now(UTC)
        updated = publishing.publish(projector.con, snapshot)
        assert not updated.full and publishing._wal(updated.slot).stat().st_size > 0
        written = published_at(snapshot)
        assert written is not None and written >= before - timedelta(seconds=1)
        assert _every_table(snapshot) == every_table(projector.con)
        code = ("import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
                "print(c.execute('SELECT count(*) FROM touchpoints').fetchone()[0])")
        seen = subprocess.run([sys.executable, "-c", code, str(snapshot)], capture_output=True, text=True, check=True)
        assert int(seen.stdout) == 31 + n
    monkeypatch.setattr(publishing, "SLOT_WAL_LIMIT", 0)
    append(store, touch("visit", "v9", customer={"customer_id": "P9"}))
    projector.catch_up()
    projector.derive()
    checkpointed = publishing.publish(projector.con, snapshot)
    assert not checkpointed.full and not publishing._wal(checkpointed.slot).exists()
    assert _every_table(snapshot) == every_table(projector.con)
    projector.close()
