"""The projector on every event-store adapter: exactly once, late events, identity."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from eventsourcing.persistence import StoredEvent

from journey.errors import ProjectionError
from journey.projections.projector import Projector
from journey.store.event_store import EventStore
from tests.projections.helpers import PSEUDONYMS, analyst_view, append, project, rows
from tests.touches import touch

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=3)))


def at(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def journey_of(anonymous: str, phone: str, patient: str, start: int = 0) -> list[dict]:
    return [
        touch("ad_click", f"{patient}-ad", occurred_at=at(start), customer={"anonymous_id": anonymous}),
        touch("call", f"{patient}-call", occurred_at=at(start + 5),
              customer={"phone": phone, "anonymous_id": anonymous}),
        touch("booking", f"{patient}-book", occurred_at=at(start + 10),
              customer={"customer_id": patient, "phone": phone}),
        touch("visit", f"{patient}-visit", occurred_at=at(start + 3000), customer={"customer_id": patient}),
    ]


def test_every_touch_lands_once_with_its_journey_order(store: EventStore, tmp_path: Path) -> None:
    append(store, *journey_of("a1", "+79161110001", "P-1"))
    con = project(store, tmp_path / "p.duckdb").con
    p1 = PSEUDONYMS.key("customer_id", "P-1")
    assert rows(con, "SELECT activity, seq, customer_id, stage FROM touchpoints ORDER BY seq") == [
        ("ad_click", 1, p1, "awareness"), ("call", 2, p1, "contact"),
        ("booking", 3, p1, "booking"), ("visit", 4, p1, "first_visit")]
    assert rows(con, "SELECT position, events, derived_position FROM projection_status") == [(4, 4, 4)]


def test_identity_merge_reaches_back_to_earlier_touches(store: EventStore, tmp_path: Path) -> None:
    first, rest = journey_of("a1", "+79161110001", "P-1")[:2], journey_of("a1", "+79161110001", "P-1")[2:]
    append(store, *first)
    projector = project(store, tmp_path / "p.duckdb")
    assert rows(projector.con, "SELECT DISTINCT customer_id FROM touchpoints") == [("anonymous_id:" + PSEUDONYMS.key("anonymous_id", "a1"),)]
    append(store, *rest)
    projector.catch_up()
    projector.derive()
    assert rows(projector.con, "SELECT DISTINCT customer_id FROM touchpoints") == [
        (PSEUDONYMS.key("customer_id", "P-1"),)]


def test_a_late_event_lands_in_its_place(store: EventStore, tmp_path: Path) -> None:
    records = journey_of("a1", "+79161110001", "P-1")
    append(store, records[0], records[2], records[3])
    projector = project(store, tmp_path / "p.duckdb")
    append(store, records[1])  # the call-centre import arrives last
    projector.catch_up()
    projector.derive()
    assert rows(projector.con, "SELECT activity FROM touchpoints ORDER BY seq") == [
        ("ad_click",), ("call",), ("booking",), ("visit",)]
    assert rows(projector.con, "SELECT source, target FROM journey_edges ORDER BY 1") == [
        ("ad_click", "call"), ("booking", "visit"), ("call", "booking")]
    assert analyst_view(projector.con) == analyst_view(project(store, tmp_path / "fresh.duckdb").con)


def test_no_contact_detail_or_free_text_reaches_the_file(store: EventStore, tmp_path: Path) -> None:
    append(store, *journey_of("click-secret-1", "+79161234567", "P-1"),
           touch("review", "rev", customer={"customer_id": "P-1", "email": "anna@example.ru"},
                 properties={"platform": "maps", "rating": 1, "text": "Rude administrator Irina"}),
           touch("profile", "prof", customer={"customer_id": "P-1"},
                 properties={"name": "Anna Smirnova", "notes": "allergic to lidocaine", "city": "Moscow"}))
    path = tmp_path / "p.duckdb"
    projector = project(store, path)
    projector.con.execute("CHECKPOINT")
    projector.close()
    data = path.read_bytes()
    for secret in (b"79161234567", b"anna@example.ru", b"click-secret-1", b"Rude administrator",
                   b"Anna Smirnova", b"lidocaine"):
        assert secret not in data, secret
    assert b"Moscow" in data  # portrait fields stay


def test_a_crash_between_batches_resumes_without_loss_or_doubles(store: EventStore, tmp_path: Path) -> None:
    append(store, *[touch("call", f"c-{i}", occurred_at=at(i), customer={"customer_id": f"P-{i % 7}"})
                    for i in range(50)])
    path = tmp_path / "p.duckdb"
    crashing = Projector(store, path, PSEUDONYMS, batch_size=8)
    calls = 0
    original = crashing.tracking.insert_tracking

    def crash_on_third(tracking):  # noqa: ANN001, ANN202
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt("power cut")
        original(tracking)

    crashing.tracking.insert_tracking = crash_on_third  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        crashing.catch_up()
    assert crashing.position == 16
    assert rows(crashing.con, "SELECT count(*) FROM internal.touches") == [(16,)]
    crashing.close()
    resumed = project(store, path, batch_size=8)
    fresh = project(store, tmp_path / "fresh.duckdb")
    assert rows(resumed.con, "SELECT count(*), count(DISTINCT event_id) FROM touchpoints") == [(50, 50)]
    assert analyst_view(resumed.con) == analyst_view(fresh.con)


def test_a_catch_up_stopped_between_batches_resumes_at_its_boundary(store: EventStore, tmp_path: Path) -> None:
    """The next batch is read ahead while one loads: a stop drops what was read ahead, and
    events stored meanwhile are read by the next catch-up, each once."""
    append(store, *[touch("call", f"c-{i}", occurred_at=at(i), customer={"customer_id": f"P-{i % 5}"})
                    for i in range(20)])
    projector = Projector(store, tmp_path / "p.duckdb", PSEUDONYMS, batch_size=6)
    stop = threading.Event()
    first = projector.catch_up(stop=stop, progress=lambda _n: stop.set())
    assert (first.read, first.position) == (6, 6)
    assert [name for name in (t.name for t in threading.enumerate()) if name.startswith("journey-read-ahead")] == []
    append(store, *[touch("call", f"late-{i}", occurred_at=at(100 + i)) for i in range(3)])
    rest = projector.catch_up()
    assert (rest.read, rest.position) == (17, 23)
    assert rows(projector.con, "SELECT count(*), count(DISTINCT event_id) FROM internal.touches") == [(23, 23)]


def test_poison_stops_a_catch_up_and_is_dead_lettered_when_following(store: EventStore, tmp_path: Path) -> None:
    append(store, touch("call", "ok-1"))
    store.recorder.append([StoredEvent("bad-1", 1, "journey.domain.events:TouchRecorded", b"{not json")])
    append(store, touch("call", "ok-2"))
    projector = Projector(store, tmp_path / "p.duckdb", PSEUDONYMS, batch_size=2)
    with pytest.raises(ProjectionError, match="position 2 .*not valid JSON.*stays at position 0"):
        projector.catch_up()
    result = projector.catch_up(dead_letter=True)
    assert [p.position for p in result.poison] == [2]
    projector.derive()
    assert rows(projector.con, "SELECT position, reason FROM dead_letters") == [(2, "the stored state is not valid JSON")]
    assert rows(projector.con, "SELECT event_id FROM touchpoints ORDER BY position") == [("ok-1",), ("ok-2",)]


def test_unknown_event_classes_and_versions_are_poison(store: EventStore, tmp_path: Path) -> None:
    store.recorder.append([
        StoredEvent("x", 1, "someone.else:Event", b'{"touch": {}}'),
        StoredEvent("y", 1, "journey.domain.events:TouchRecorded",
                    b'{"touch": {"event_id": "y"}, "recorded_at": "2025-01-01T00:00:00Z", "class_version": 7}'),
    ])
    projector = Projector(store, tmp_path / "p.duckdb", PSEUDONYMS)
    reasons = [p.reason for p in projector.catch_up(dead_letter=True).poison]
    assert reasons[0] == "unknown event class someone.else:Event"
    assert "version 7" in reasons[1] and "upcaster" in reasons[1]


def test_as_of_sees_only_what_was_recorded_by_then(store: EventStore, tmp_path: Path) -> None:
    day1 = datetime(2025, 3, 1, tzinfo=timezone.utc)
    append(store, *journey_of("a1", "+79161110001", "P-1")[:3], recorded_at=day1)
    append(store, journey_of("a1", "+79161110001", "P-1")[3], recorded_at=day1 + timedelta(days=2))
    then = project(store, tmp_path / "then.duckdb", as_of=day1 + timedelta(days=1))
    now = project(store, tmp_path / "now.duckdb")
    assert rows(then.con, "SELECT count(*) FROM touchpoints") == [(3,)]
    assert rows(now.con, "SELECT count(*) FROM touchpoints") == [(4,)]
    assert rows(then.con, "SELECT as_of FROM projection_status")[0][0] == day1 + timedelta(days=1)


def test_a_file_built_with_another_secret_must_be_rebuilt(store: EventStore, tmp_path: Path) -> None:
    from journey.crypto.pseudonym import Pseudonymiser

    project(store, tmp_path / "p.duckdb").close()
    with pytest.raises(ProjectionError, match="journey rebuild"):
        Projector(store, tmp_path / "p.duckdb", Pseudonymiser(b"another-secret-0123456789"))


def test_analyst_tables_have_their_documented_types_even_when_empty(store: EventStore, tmp_path: Path) -> None:
    con = project(store, tmp_path / "p.duckdb").con
    types = dict(rows(con, "SELECT column_name, data_type FROM information_schema.columns "
                           "WHERE table_name = 'identity_ambiguities'"))
    assert types == {"id_kind": "VARCHAR", "id": "VARCHAR", "candidates": "VARCHAR[]"}
    from journey.projections.schema import ANALYST_TABLES

    tables = {t for (t,) in rows(con, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'")}
    assert set(ANALYST_TABLES) <= tables


_KILLED_MID_DERIVE = """
import sys, time
from pathlib import Path
import journey.projections.derive as derive
from journey.projections.projector import Projector
from journey.store.event_store import EventStore
from journey.store.sqlite import open_sqlite
from tests.stores import PSEUDONYMS

store_path, working, marker = sys.argv[1:4]
original = derive.write_analysis_tables

def stalled(*args, **kwargs):  # the derive has rewritten touchpoints and customers by now
    Path(marker).write_text("deriving")
    time.sleep(120)

derive.write_analysis_tables = stalled
projector = Projector(EventStore(open_sqlite(store_path)), Path(working), PSEUDONYMS)
projector.catch_up()
projector.derive()
"""


def test_kill_9_inside_an_incremental_derive_resumes_exactly(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    from journey.store.sqlite import open_sqlite
    from tests.projections.helpers import every_table

    store = EventStore(open_sqlite(str(tmp_path / "events.sqlite")))
    append(store, *journey_of("web-1", "+79160000001", "P1"), *journey_of("web-2", "+79160000002", "P2", 60))
    project(store, tmp_path / "inc.duckdb").close()
    append(store, touch("call", "late-back", occurred_at=at(-60 * 24 * 90), customer={"customer_id": "P1"}),
           touch("identity_link", "merge", customer={"customer_id": "P2", "anonymous_id": "web-3"}),
           touch("ad_click", "web-3-ad", occurred_at=at(30), customer={"anonymous_id": "web-3"}))
    marker = tmp_path / "deriving"
    victim = subprocess.Popen([sys.executable, "-c", _KILLED_MID_DERIVE, str(tmp_path / "events.sqlite"),
                               str(tmp_path / "inc.duckdb"), str(marker)], cwd=Path(__file__).parents[2])
    deadline = time.monotonic() + 60
    while not marker.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists(), "the child never reached the middle of its derive"
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL

    resumed = Projector(store, tmp_path / "inc.duckdb", PSEUDONYMS)
    assert resumed.derived_position() < resumed.position == 11  # loaded, never derived
    assert resumed.catch_up().read == 0 and resumed.derive()
    assert resumed.last_derive is not None and resumed.last_derive.since == 8  # incremental, from before the kill
    rebuilt = project(store, tmp_path / "rebuilt.duckdb")
    assert every_table(resumed.con) == every_table(rebuilt.con)
    assert rows(resumed.con, "SELECT seq FROM touchpoints WHERE event_id = 'late-back'") == [(1,)]
    p2 = PSEUDONYMS.key("customer_id", "P2")
    assert rows(resumed.con, "SELECT customer_id FROM touchpoints WHERE event_id = 'web-3-ad'") == [(p2,)]
    resumed.close()
    rebuilt.close()


def test_an_incremental_derive_only_where_it_gives_what_a_rebuild_gives(tmp_path: Path) -> None:
    from journey.projections.stage_model import load_stage_model
    from journey.store.recorder import InMemoryJourneyRecorder
    from tests.projections.helpers import every_table

    store = EventStore(InMemoryJourneyRecorder())
    append(store, *journey_of("web-1", "+79160000001", "P1"), *journey_of("web-2", "+79160000002", "P2", 60))
    projector = project(store, tmp_path / "inc.duckdb")
    assert projector.last_derive is not None and projector.last_derive.since is None  # the first: in full
    append(store, touch("visit", "v2", occurred_at=at(9000), customer={"customer_id": "P1"}))
    projector.catch_up()
    projector.derive()
    assert projector.last_derive.since == 8 and projector.last_derive.customers == 1  # P1 only
    projector.close()

    other = load_stage_model(Path(__file__).with_name("touch_stages.toml"))  # JOURNEY_STAGE_MODEL changed
    append(store, touch("call", "c3", occurred_at=at(9100), customer={"customer_id": "P2"}))
    again = Projector(store, tmp_path / "inc.duckdb", PSEUDONYMS, stage_model=other)
    again.catch_up()
    again.derive()
    assert again.last_derive is not None and again.last_derive.since is None  # another model: in full
    rebuilt = project(store, tmp_path / "rebuilt.duckdb", stage_model=other)
    assert every_table(again.con) == every_table(rebuilt.con)
    again.close()
    rebuilt.close()


def test_an_sla_change_alone_derives_in_full(tmp_path: Path) -> None:
    from journey.projections.derive import model_fingerprint
    from journey.projections.stage_model import default_stage_model
    from journey.store.recorder import InMemoryJourneyRecorder

    model = default_stage_model()
    stages = list(model.stages)
    stages[1] = stages[1].model_copy(update={"sla": "1h"})
    shorter = model.model_copy(update={"stages": tuple(stages)})
    assert model_fingerprint(shorter) != model_fingerprint(model)
    store = EventStore(InMemoryJourneyRecorder())
    append(store, *journey_of("web-1", "+79160000001", "P1"))
    project(store, tmp_path / "p.duckdb").close()
    append(store, touch("call", "c2", occurred_at=at(100), customer={"customer_id": "P1"}))
    again = Projector(store, tmp_path / "p.duckdb", PSEUDONYMS, stage_model=shorter)
    again.catch_up()
    again.derive()
    assert again.last_derive is not None and again.last_derive.since is None
    again.close()
