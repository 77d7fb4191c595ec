"""Ingestion: nothing accepted is lost, nothing bad passes, every record is counted."""

from __future__ import annotations

import orjson

from journey.ingest.pipeline import Ingestor
from journey.ingest.sources import RawRecord
from journey.store.event_store import EventStore
from tests.touches import raw, touch


def records(*lines: bytes) -> list[RawRecord]:
    return [RawRecord("in.jsonl", f"line {n}", line) for n, line in enumerate(lines, 1)]


MIXED = records(
    raw(touch(event_id="ok-1")),
    b"{not json",
    raw(touch(event_id="naive", occurred_at="2025-03-01T09:30:00")),
    raw(touch(event_id="ok-1")),  # exact repeat
    raw(touch(event_id="ok-1", channel="web")),  # conflicting repeat
    raw(touch("visit", event_id="typo", properties={"visit_id": "v", "ammount": "1"})),
    raw(touch(event_id="ok-2", type="message", properties={"medium": "sms", "purpose": "recall"})),
    b"x" * 70_000,
)


def test_every_record_is_accepted_quarantined_or_a_duplicate(store: EventStore) -> None:
    summary = Ingestor(store, batch_size=3).ingest(MIXED)
    assert (summary.read, summary.accepted, summary.duplicates, summary.quarantined) == (8, 2, 1, 5)
    assert summary.accepted + summary.duplicates + summary.quarantined == summary.read
    codes = sorted(e.rejection.code for e in store.quarantine())
    assert codes == ["bad_json", "conflict", "naive_timestamp", "oversized", "unknown_property"]


def test_quarantine_keeps_raw_bytes_source_line_and_event_id(store: EventStore) -> None:
    Ingestor(store).ingest(MIXED)
    by_code = {e.rejection.code: e.rejection for e in store.quarantine()}
    assert by_code["bad_json"].raw == b"{not json"
    assert by_code["bad_json"].locator == "line 2"
    assert by_code["naive_timestamp"].event_id == "naive"
    assert by_code["unknown_property"].event_id == "typo"
    assert by_code["oversized"].event_id is None


def test_ingesting_the_same_input_again_adds_only_duplicates(store: EventStore) -> None:
    ingestor = Ingestor(store)
    ingestor.ingest(MIXED)
    again = ingestor.ingest(MIXED)
    assert (again.accepted, again.duplicates) == (0, 3)
    assert store.position() == 2


def test_a_fixed_record_resolves_its_quarantine_entry(store: EventStore) -> None:
    ingestor = Ingestor(store)
    ingestor.ingest(MIXED)
    fixed = records(raw(touch(event_id="naive", occurred_at="2025-03-01T09:30:00+03:00")))
    assert ingestor.ingest(fixed).accepted == 1
    open_codes = sorted(e.rejection.code for e in store.quarantine())
    assert "naive_timestamp" not in open_codes
    resolved = [e for e in store.quarantine(open_only=False) if e.resolved_at]
    assert [e.rejection.event_id for e in resolved] == ["naive"]


def test_retry_accepts_entries_that_pass_under_new_settings(store: EventStore) -> None:
    national = raw(touch(event_id="nat", customer={"phone": "8 916 123 45 67"}))
    Ingestor(store).ingest(records(national, b"garbage"))
    assert store.recorder.count_quarantine() == 2
    summary = Ingestor(store, default_region="RU").retry_quarantine()
    assert (summary.retried, summary.accepted, summary.still_failing) == (2, 1, 1)
    assert store.get("nat").touch["customer"]["phone"] == "+79161234567"  # type: ignore[union-attr]
    assert [e.rejection.raw for e in store.quarantine()] == [b"garbage"]


def test_progress_is_reported_per_batch(store: EventStore) -> None:
    seen: list[int] = []
    Ingestor(store, batch_size=3).ingest(MIXED, seen.append)
    assert seen == [3, 3, 2]


def test_summary_json_has_the_documented_keys(store: EventStore) -> None:
    summary = Ingestor(store).ingest(MIXED).to_dict()
    assert {"read", "accepted", "duplicates", "quarantined"} <= set(summary)
    assert orjson.loads(orjson.dumps(summary))["read"] == 8


def test_worker_processes_give_the_same_result_in_input_order(tmp_path) -> None:  # noqa: ANN001
    from journey.store.sqlite import open_sqlite

    lines = [raw(touch(event_id=f"w-{i}")) if i % 7 else b"broken" for i in range(600)]
    parallel = EventStore(open_sqlite(str(tmp_path / "p.sqlite")))
    single = EventStore(open_sqlite(str(tmp_path / "s.sqlite")))
    a = Ingestor(parallel, batch_size=50, workers=2).ingest(records(*lines))
    b = Ingestor(single, batch_size=50, workers=1).ingest(records(*lines))
    assert (a.read, a.accepted, a.quarantined) == (b.read, b.accepted, b.quarantined) == (600, 514, 86)
    assert [e.event_id for _, e in parallel.read()] == [e.event_id for _, e in single.read()]
    assert [e.event_id for _, e in parallel.read()][:3] == ["w-1", "w-2", "w-3"]
    assert [q.rejection.locator for q in parallel.quarantine(limit=3)] == ["line 1", "line 8", "line 15"]


def test_retry_resolves_every_copy_of_a_record_quarantined_twice(store: EventStore) -> None:
    national = raw(touch(event_id="nat", customer={"phone": "8 916 123 45 67"}))
    Ingestor(store).ingest(records(national))
    Ingestor(store).ingest(records(national))
    summary = Ingestor(store, default_region="RU").retry_quarantine()
    assert (summary.accepted, summary.duplicates) == (1, 1)
    assert store.recorder.count_quarantine() == 0


def test_workers_seal_with_their_own_key_stores_and_make_each_key_once(tmp_path) -> None:  # noqa: ANN001
    """Two workers seal the same identifiers at once: one key per identifier, the
    writer only appends what they sealed, and every touch reads back whole."""
    from journey.crypto.keys import SQLiteKeyStore
    from journey.crypto.sealing import SealerSpec
    from journey.store.sqlite import open_sqlite
    from tests.stores import WRAP, sealed

    keys_path = tmp_path / "keys.sqlite"
    store = sealed(open_sqlite(str(tmp_path / "e.sqlite")), SQLiteKeyStore(str(keys_path), WRAP))
    spec = SealerSpec(f"sqlite:///{keys_path}", b"m" * 32, b"test-secret-0123456789abcdef")
    lines = [raw(touch(event_id=f"k-{i}", customer={"customer_id": f"c-{i % 30}", "phone": f"+7916{i % 30:07d}"}))
             for i in range(400)]
    ingestor = Ingestor(store, batch_size=20, workers=2, sealing=spec)
    stored_sealed = [s.sealed for _, (subs, _) in ingestor.validated([records(*lines)[i:i + 20]
                                                                         for i in range(0, 400, 20)]) for s in subs]
    assert len(stored_sealed) == 400 and all(s and b'"enc1:' in s for s in stored_sealed)
    summary = ingestor.ingest(records(*lines))
    assert summary.accepted == 400
    assert store.sealer.keys.generation() == 0
    count = store.sealer.keys._con.execute("SELECT count(*), count(DISTINCT subject) FROM journey_keys").fetchone()
    assert count == (60, 60)  # 30 customer ids + 30 phones, each keyed once
    events = {e.event_id: e.touch for _, e in store.read()}
    assert events["k-33"]["customer"] == {"customer_id": "c-3", "phone": "+79160000003"}
    assert b"c-3" not in (tmp_path / "e.sqlite").read_bytes()


def test_a_small_ingest_starts_no_workers(monkeypatch) -> None:  # noqa: ANN001
    import journey.ingest.pipeline as pipeline

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("a worker pool was started for one batch")

    monkeypatch.setattr(pipeline, "ProcessPoolExecutor", refuse)
    from journey.store.recorder import InMemoryJourneyRecorder

    store = EventStore(InMemoryJourneyRecorder())
    lines = [raw(touch(event_id=f"s-{i}")) for i in range(300)]
    assert Ingestor(store, batch_size=5000, workers=2).ingest(records(*lines)).accepted == 300


def _rows(recorder) -> list[tuple[str, int, str, bytes]]:  # noqa: ANN001
    """Every stored row, ``recorded_at`` blanked (it is the time of the append)."""
    import re

    with recorder.datastore.transaction(commit=False) as c:
        c.execute("SELECT originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid")
        return [(i, v, t, re.sub(rb',"recorded_at":"[^"]*"', b',"recorded_at":""', bytes(s)))
                for i, v, t, s in c.fetchall()]


def test_stored_rows_are_what_the_touch_by_touch_mapping_stores(tmp_path) -> None:  # noqa: ANN001
    """The columnar write path (worker batches, ``Touches``, ``StoredRows``) stores the
    same bytes, in the same order, as sealing and mapping each touch on its own
    (``Sealer.seal_all`` field by field, ``JourneyMapper.stored``): demo touches, every
    example type, repeats and conflicts inside and across batches, invalid records; both
    with sealing workers and in one process, against one key store (AES-SIV is
    deterministic, so one key store seals alike)."""
    import itertools

    from journey.crypto.keys import SQLiteKeyStore
    from journey.crypto.sealing import SealerSpec
    from journey.demo import generate_clinic
    from journey.domain.events import recorded_class
    from journey.domain.touch import parse_touch
    from journey.store.sqlite import open_sqlite
    from tests.stores import WRAP, sealed
    from tests.touches import PROPERTIES

    demo = [orjson.dumps(r) for r in itertools.islice(generate_clinic(seed=5, patients=200), 900)]
    examples = [raw(touch(t, event_id=f"x-{t}")) for t in [*PROPERTIES, "custom", "identity_link"]]
    lines = [*demo[:300], *examples, demo[10], b"{broken", raw(touch(event_id="x-call", channel="web")),
             *demo[300:], demo[5], *examples[:3]]
    keys_path = tmp_path / "keys.sqlite"
    spec = SealerSpec(f"sqlite:///{keys_path}", b"m" * 32, b"test-secret-0123456789abcdef")
    by_path = {}
    for name, workers in (("workers", 2), ("in-process", 0)):
        store = sealed(open_sqlite(str(tmp_path / f"{name}.sqlite")), SQLiteKeyStore(str(keys_path), WRAP))
        summary = Ingestor(store, batch_size=64, workers=workers, sealing=spec if workers else None).ingest(
            records(*lines))
        assert summary.accepted + summary.duplicates + summary.quarantined == summary.read == len(lines)
        by_path[name] = (_rows(store.recorder), [(e.rejection.code, e.rejection.locator) for e in store.quarantine()])
    reference = sealed(open_sqlite(str(tmp_path / "reference.sqlite")), SQLiteKeyStore(str(keys_path), WRAP))
    expected, seen = [], set()
    for line in lines:
        try:
            parsed = parse_touch(line)
        except Exception:  # noqa: BLE001 - the invalid record
            continue
        if parsed.event_id in seen:
            continue
        seen.add(parsed.event_id)
        body = reference.sealer.seal_all([parsed.content_json()])[0]  # type: ignore[attr-defined]
        event = reference.mapper.stored(recorded_class(parsed.type), parsed.event_id, body, "")
        expected.append((event.originator_id, 1, event.topic, event.state))
    assert len(expected) == len(demo) + len(examples)
    assert by_path["workers"][0] == by_path["in-process"][0] == expected
    broken = 300 + len(examples) + 2
    assert by_path["workers"][1] == by_path["in-process"][1] == [("bad_json", f"line {broken}"),
                                                                   ("conflict", f"line {broken + 1}")]


def _children(pid: int) -> list[int]:
    import os

    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    if int(stat.read().rsplit(b")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found


def test_a_killed_ingest_leaves_no_worker_or_fork_server_behind(tmp_path) -> None:  # noqa: ANN001
    """``kill -9`` of an ingest with workers: its workers, the fork server and the resource
    tracker all end (before, the workers waited for a task forever and kept the others)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    lines = tmp_path / "touches.jsonl"
    lines.write_bytes(b"".join(raw(touch("call", f"c{n}", customer={"customer_id": f"P{n % 997}"})) + b"\n"
                               for n in range(100_000)))
    env = {**os.environ, "JOURNEY_HOME": str(tmp_path / "home"), "JOURNEY_INGEST_WORKERS": "2"}
    env.pop("JOURNEY_EVENT_STORE", None)
    ingest = subprocess.Popen([sys.executable, "-m", "journey", "ingest", str(lines)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    helpers: set[int] = set()
    while time.monotonic() < deadline and ingest.poll() is None:
        children = _children(ingest.pid)
        workers = [w for child in children for w in _children(child)]
        if len(workers) >= 2:
            helpers = {*children, *workers}
            break
        time.sleep(0.01)
    assert ingest.poll() is None and helpers, "the ingest ended before its workers were seen"
    ingest.send_signal(signal.SIGKILL)
    ingest.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{pid}") for pid in helpers):
        time.sleep(0.1)
    left = [pid for pid in helpers if os.path.exists(f"/proc/{pid}")]
    for pid in left:  # (leave the machine clean if it failed)
        os.kill(pid, signal.SIGKILL)
    assert not left, f"{len(left)} of the ingest's {len(helpers)} helper processes outlived it"


class _LazyFuture:
    """A worker's result that is ready only once waited for (a busy worker)."""

    def __init__(self, call) -> None:  # noqa: ANN001
        self._call = call
        self._value = None
        self._ready = False

    def done(self) -> bool:
        return self._ready

    def result(self, timeout=None):  # noqa: ANN001, ANN201
        if not self._ready:
            self._value, self._ready = self._call(), True
        return self._value


class _BusyPool:
    """A stand-in for the worker pool whose workers never finish before they are waited for."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        pass

    def __enter__(self):  # noqa: ANN204
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        return None

    def submit(self, fn, *args):  # noqa: ANN001, ANN002, ANN201
        return _LazyFuture(lambda: fn(*args))


def test_a_tick_hands_over_every_batch_in_flight_before_reading_on(monkeypatch) -> None:  # noqa: ANN001
    """A stream's empty batch (a Kafka poll with nothing new): every batch read before it
    is handed over, even from busy workers, before the source is read again."""
    import journey.ingest.pipeline as pipeline
    from journey.store.recorder import InMemoryJourneyRecorder

    monkeypatch.setattr(pipeline, "ProcessPoolExecutor", _BusyPool)
    batches = [records(raw(touch(event_id=f"t-{b}"))) for b in range(9)]
    handed: list[list[RawRecord]] = []

    def source():  # noqa: ANN202
        yield from batches[:3]
        yield []
        assert handed == batches[:3]  # the tick flushed them
        yield from batches[3:]

    for batch, _ in Ingestor(EventStore(InMemoryJourneyRecorder()), workers=2).validated(source(), stream=True):
        handed.append(batch)
    assert handed == batches
