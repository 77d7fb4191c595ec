"""Forgetting a customer on every event-store adapter: the stored bytes stay and
cannot be read; projections drop the customer; a rebuild equals the increment."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from eventsourcing.persistence import StoredEvent

from journey.domain.touch import parse_touch
from journey.errors import InputError
from journey.privacy.forget import forget, parse_reference
from journey.store.event_store import EventStore, Submission
from journey.store.records import Rejection
from tests.projections.helpers import PSEUDONYMS, append, every_table, project, rows
from tests.touches import raw, touch

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=3)))
ANNA = {"customer_id": "CRM-ANNA-77", "phone": "+79161234567"}
BORIS = {"customer_id": "CRM-BORIS-88", "phone": "+79169998877"}
SECRETS = (b"CRM-ANNA-77", b"79161234567", b"anna.s@example.ru", b"web-anna-1", b"Anna Smirnova",
           b"Rude administrator", b"lidocaine")


def at(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def clinic(store: EventStore) -> None:
    append(
        store,
        touch("ad_click", "e1", occurred_at=at(0), customer={"anonymous_id": "web-anna-1"}),
        touch("call", "e2", occurred_at=at(5), customer={"phone": "+79161234567", "anonymous_id": "web-anna-1"}),
        touch("booking", "e3", occurred_at=at(10), customer=ANNA),
        touch("visit", "e4", occurred_at=at(3000), customer={"customer_id": "CRM-ANNA-77"}),
        touch("review", "e5", occurred_at=at(4000),
              customer={"customer_id": "CRM-ANNA-77", "email": "anna.s@example.ru"},
              properties={"platform": "maps", "rating": 1, "text": "Rude administrator"}),
        touch("profile", "e6", occurred_at=at(4001), customer={"customer_id": "CRM-ANNA-77"},
              properties={"name": "Anna Smirnova", "notes": "allergic to lidocaine", "city": "Moscow"}),
        touch("call", "e7", occurred_at=at(20), customer={"phone": "+79169998877"}),
        touch("booking", "e8", occurred_at=at(30), customer=BORIS),
        touch("visit", "e9", occurred_at=at(3100), customer={"customer_id": "CRM-BORIS-88"}),
        touch("referral", "e10", occurred_at=at(15), customer={"customer_id": "CRM-BORIS-88"},
              properties={"kind": "patient", "referrer": "CRM-ANNA-77"}),  # Anna sent Boris
    )
    store.append([], [Rejection("file", "line 10", b'{"type":"call","customer":{"phone":"8 (916) 123-45-67"}',
                                "bad_json", "not JSON")])


def test_forgetting_destroys_the_keys_and_projections_follow(store: EventStore, tmp_path: Path) -> None:
    clinic(store)
    incremental = project(store, tmp_path / "inc.duckdb")
    anna = PSEUDONYMS.key("customer_id", "CRM-ANNA-77")
    assert rows(incremental.con, f"SELECT count(*) FROM customers WHERE customer_id = '{anna}'") == [(1,)]
    assert referral_credit(incremental.con) == [(anna, "referred:e10", "advocacy", "2025-03-01 06:15:00+00")]

    erasure = forget(store, parse_reference("CRM-ANNA-77", store), note="patient request")

    assert erasure.identifiers == {"customer_id": 1, "phone": 1, "email": 1, "anonymous_id": 1}
    assert erasure.keys_destroyed == 4 and erasure.quarantine_erased == 1
    events = {e.event_id: e for _, e in store.read()}
    assert all(events[i].erased and not events[i].touch["customer"] for i in ("e1", "e2", "e3", "e4", "e5", "e6"))
    assert "text" not in events["e5"].touch["properties"] and events["e4"].touch["type"] == "visit"
    assert events["e8"].touch["customer"] == BORIS and not events["e8"].erased
    assert store.recorder.select_quarantine(open_only=False)[0].rejection.raw == b""

    incremental.catch_up()
    incremental.derive()
    rebuilt = project(store, tmp_path / "rebuilt.duckdb")
    assert every_table(incremental.con) == every_table(rebuilt.con)
    con = rebuilt.con
    assert rows(con, f"SELECT count(*) FROM customers WHERE customer_id = '{anna}'") == [(0,)]
    assert rows(con, "SELECT count(*), count(customer_id) FROM touchpoints WHERE event_id = 'erased'") == [(6, 0)]
    assert rows(con, "SELECT count(*) FROM touchpoints WHERE type = 'visit'") == [(2,)]  # the fact stays
    assert rows(con, "SELECT count(*) FROM customers") == [(1,)]  # Boris
    assert referral_credit(con) == referral_credit(incremental.con) == []  # the referrer is forgotten
    assert rows(con, "SELECT stage FROM touchpoints WHERE event_id = 'e10'") == [("awareness",)]  # Boris's stays
    for view in (incremental.con, con):  # the properties the derive reads go with the rest
        assert rows(view, "SELECT count(*) FROM internal.touches WHERE event_id = 'erased' "
                          "AND (properties IS NOT NULL OR read_properties IS NOT NULL)") == [(0,)]
    for column, kind, value in (("phone_key", "phone", "+79161234567"), ("anonymous_key", "anonymous_id", "web-anna-1")):
        for view in (incremental.con, con):
            found = view.execute(f"SELECT count(*) FROM internal.touches WHERE {column} = ?",
                                 [PSEUDONYMS.key(kind, value)]).fetchall()
            assert found == [(0,)], column


def referral_credit(con) -> list[tuple[str, str, str, str]]:
    return rows(con, "SELECT customer_id, event_id, stage, strftime(occurred_at AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S+00') "
                     "FROM touchpoints WHERE type = 'referred_friend'")


def test_a_follower_publishes_the_forgetting_at_once_and_leaves_no_slot_with_the_customer(
        tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """In follow mode the erasure's derive (in full) is published whole in its own cycle,
    not behind the next one, and the slot that still held the customer is removed."""
    import threading

    from journey.projections import operations
    from journey.projections.operations import ProjectionPaths
    from journey.projections.publish import query, slot_paths
    from tests.conftest import make_keys, make_recorder
    from tests.stores import sealed

    store = sealed(make_recorder("sqlite", tmp_path, request), make_keys("sqlite", tmp_path, request))
    clinic(store)
    paths = ProjectionPaths(tmp_path / "projection.duckdb", tmp_path / "analytics.duckdb")
    anna = PSEUDONYMS.key("customer_id", "CRM-ANNA-77")
    stop = threading.Event()
    seen: list[tuple[int, int]] = []

    def anna_rows() -> int:
        return query(paths.snapshot, f"SELECT count(*) FROM customers WHERE customer_id = '{anna}'")[1][0][0]

    def on_cycle(result: object) -> None:
        read = result.read  # type: ignore[attr-defined]
        if read:
            seen.append((read, anna_rows()))
        if len(seen) == 1 and read:  # both slots published, then an increment, then the erasure
            append(store, touch("visit", "late-boris", occurred_at=at(3200), customer={"customer_id": "CRM-BORIS-88"}))
        elif len(seen) == 2 and read:
            forget(store, parse_reference("CRM-ANNA-77", store), note="patient request")
        elif len(seen) == 3:
            stop.set()

    operations.follow(store, paths, PSEUDONYMS, interval=0.01, stop=stop, on_cycle=on_cycle)
    assert [anna for _, anna in seen] == [1, 1, 0]  # gone from the snapshot in the erasure's own cycle
    remaining = [slot for slot in slot_paths(paths.snapshot) if slot.exists()]
    assert remaining == [paths.snapshot.resolve()]  # the slot that held Anna is removed


def test_the_event_store_file_holds_no_personal_data(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from tests.conftest import make_keys, make_recorder
    from tests.stores import sealed

    store = sealed(make_recorder("sqlite", tmp_path, request), make_keys("sqlite", tmp_path, request))
    clinic(store)
    referral = next(e for _, e in store.read() if e.event_id == "e10").touch["properties"]
    assert referral["referrer"] == "CRM-ANNA-77"  # unsealed on the way out
    sealed_projection = project(store, tmp_path / "sealed.duckdb")
    anna = PSEUDONYMS.key("customer_id", "CRM-ANNA-77")
    assert [row[:3] for row in referral_credit(sealed_projection.con)] == [(anna, "referred:e10", "advocacy")]
    assert rows(sealed_projection.con, "SELECT properties FROM touchpoints WHERE event_id = 'e10'") == [('{"kind":"patient"}',)]
    sealed_projection.con.close()
    forget(store, ("customer_id", "CRM-ANNA-77"))
    store.recorder.datastore.close()
    data = (tmp_path / "events.sqlite").read_bytes() + (tmp_path / "keys.sqlite").read_bytes()
    for secret in SECRETS:
        assert secret not in data, secret
    assert b'"type":"visit"' in data  # the facts are stored in the clear


def test_a_replay_of_a_forgotten_touch_is_not_learned_again(store: EventStore) -> None:
    clinic(store)
    forget(store, ("phone", "+79161234567"))
    record = touch("booking", "e3", occurred_at=at(10), customer=ANNA)
    outcome = store.append([Submission.of(parse_touch(raw(record)))])
    assert (outcome.accepted, outcome.duplicates, outcome.quarantined) == (0, 1, 0)


def test_forgetting_twice_or_an_unknown_customer_says_so(store: EventStore) -> None:
    clinic(store)
    with pytest.raises(InputError, match="no customer"):
        forget(store, ("customer_id", "CRM-NOBODY"))
    forget(store, ("customer_id", "CRM-BORIS-88"))
    with pytest.raises(InputError, match="no customer|forgotten already"):
        forget(store, ("customer_id", "CRM-BORIS-88"))


def test_a_reference_may_be_a_pseudonym_or_a_spelled_phone(store: EventStore) -> None:
    clinic(store)
    assert parse_reference("phone:8 916 123-45-67", store, "RU") == ("phone", "+79161234567")
    assert parse_reference(PSEUDONYMS.key("customer_id", "CRM-BORIS-88"), store) == ("customer_id", "CRM-BORIS-88")
    with pytest.raises(InputError, match="not a valid phone"):
        parse_reference("phone:not-a-number", store)


def test_a_touch_written_with_a_key_destroyed_a_moment_before_is_anonymised(store: EventStore, tmp_path: Path) -> None:
    """A writer whose key cache was a moment old stores a touch under a destroyed key."""
    clinic(store)
    late = store.recorder.select_streams(["e3"])["e3"]  # Anna's booking, sealed with her keys
    incremental = project(store, tmp_path / "inc.duckdb")
    forget(store, ("customer_id", "CRM-ANNA-77"))
    incremental.catch_up()
    store.recorder.append([StoredEvent("e3-late", 1, late.topic, late.state.replace(b'"e3"', b'"e3-late"'))])
    incremental.catch_up()
    incremental.derive()
    assert rows(incremental.con, "SELECT count(*) FROM touchpoints WHERE event_id = 'e3-late'") == [(0,)]
    assert rows(incremental.con, "SELECT count(*), count(customer_id) FROM touchpoints WHERE event_id = 'erased'") == [
        (7, 0)]
    assert every_table(incremental.con) == every_table(project(store, tmp_path / "rebuilt.duckdb").con)
