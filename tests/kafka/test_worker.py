"""Producer -> Kafka (a real Tansu broker) -> ingest worker -> event store, exactly once."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer

from journey.demo import generate_clinic
from journey.domain.touch import parse_touch
from journey.errors import InvalidTouchError
from journey.ingest.kafka import KafkaIngestWorker, KafkaSettings, tracking_name
from journey.privacy.forget import forget
from journey.producer import TouchProducer
from journey.store.event_store import EventStore
from journey.store.postgres import open_postgres
from journey.store.sqlite import open_sqlite
from tests.projections.helpers import project, rows
from tests.stores import sealed
from tests.touches import touch


def produce(broker: str, topic: str, count: int, seed: int = 5, *, one_by_one: bool = False) -> list[dict]:
    records = list(itertools.islice(generate_clinic(seed=seed, patients=count), count))
    with TouchProducer(broker, topic) as producer:
        for record in records:
            producer.send(record)
            if one_by_one:
                producer.flush()
    return records


def worker(store: EventStore, broker: str, topic: str, group: str | None = None) -> KafkaIngestWorker:
    """A worker in the test's own consumer group (groups are never shared between tests:
    a killed member of a shared group would hold up the next test's join)."""
    return KafkaIngestWorker(store, KafkaSettings(broker, topic, f"{topic}.dead-letter", group or f"group-{topic}",
                                                  max_batch=200))


def test_produce_ingest_project_end_to_end(broker: str, topic: str, tmp_path: Path) -> None:
    records = produce(broker, topic, 600)
    store = EventStore(open_sqlite(str(tmp_path / "events.sqlite")))
    summary = worker(store, broker, topic).run(until_idle=2)
    assert (summary.read, summary.accepted, summary.quarantined) == (600, 600, 0)
    assert {e.event_id for _, e in store.read()} == {r["event_id"] for r in records}
    con = project(store, tmp_path / "p.duckdb").con
    assert rows(con, "SELECT count(*) FROM touchpoints WHERE type <> 'referred_friend'") == [(600,)]
    positions = [store.recorder.max_tracking_id(tracking_name(topic, p)) for p in range(3)]
    assert sum(p + 1 for p in positions if p is not None) == 600  # every offset tracked


def test_the_group_offsets_cover_what_was_stored_once_the_worker_closes(broker: str, topic: str,
                                                                        tmp_path: Path) -> None:
    from confluent_kafka import Consumer, TopicPartition

    produce(broker, topic, 400)
    store = EventStore(open_sqlite(str(tmp_path / "events.sqlite")))
    assert worker(store, broker, topic).run(until_idle=2).accepted == 400
    probe = Consumer({"bootstrap.servers": broker, "group.id": f"group-{topic}", "enable.auto.commit": False})
    try:  # Kafka's own tools read these (commits go out without waiting; close waits for the last)
        committed = probe.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
    finally:
        probe.close()
    stored = [store.recorder.max_tracking_id(tracking_name(topic, p)) for p in range(3)]
    assert [tp.offset for tp in committed] == [s + 1 if s is not None else -1001 for s in stored]
    assert sum(tp.offset for tp in committed if tp.offset >= 0) == 400


def test_redelivering_the_whole_topic_twice_stores_nothing_twice(broker: str, topic: str, tmp_path: Path) -> None:
    produce(broker, topic, 300)
    produce(broker, topic, 300)  # the producer sends everything again
    store = EventStore(open_sqlite(str(tmp_path / "events.sqlite")))
    first = worker(store, broker, topic).run(until_idle=2)
    assert (first.read, first.accepted, first.duplicates) == (600, 300, 300)
    again = worker(store, broker, topic, group="a-new-group").run(until_idle=2)  # offsets from zero
    assert again.accepted == 0
    assert store.position() == 300


def test_invalid_messages_are_quarantined_and_dead_lettered(broker: str, topic: str, tmp_path: Path) -> None:
    raw = KafkaProducer(bootstrap_servers=broker)
    raw.send(topic, value=b"\xff\xfe not even utf-8", key=b"k", partition=0)
    raw.send(topic, value=b'{"event_id": "x", "type": "call"}', key=b"k", partition=0)
    raw.flush()
    raw.close()
    produce(broker, topic, 50)
    store = EventStore(open_sqlite(str(tmp_path / "events.sqlite")))
    summary = worker(store, broker, topic).run(until_idle=2)
    assert (summary.read, summary.accepted, summary.quarantined) == (52, 50, 2)
    assert sorted(e.rejection.code for e in store.quarantine()) == ["bad_encoding", "missing_field"]
    dead = KafkaConsumer(f"{topic}.dead-letter", bootstrap_servers=broker, auto_offset_reset="earliest",
                         consumer_timeout_ms=5000)
    letters = [dict(m.headers) for m in dead]
    dead.close()
    assert sorted(h["journey-code"] for h in letters) == [b"bad_encoding", b"missing_field"]
    assert all(h["journey-source"].startswith(f"{topic}/0@".encode()) for h in letters)


def test_a_dead_letter_written_after_forgetting_holds_no_personal_data(broker: str, topic: str, tmp_path: Path) -> None:
    store = sealed(open_sqlite(str(tmp_path / "events.sqlite")))
    anna = {"customer_id": "CRM-ANNA-77", "phone": "+79161234567", "email": "anna.s@example.ru"}
    with TouchProducer(broker, topic) as producer:
        producer.send(touch("booking", "b1", customer=anna))
    assert worker(store, broker, topic).run(until_idle=2).accepted == 1
    forget(store, ("customer_id", "CRM-ANNA-77"))
    raw = KafkaProducer(bootstrap_servers=broker)  # the producer's system sends a broken record about her
    raw.send(topic, partition=0, value=orjson.dumps({
        "event_id": "b2", "type": "review", "occurred_at": "2025-03-01T10:00:00", "customer": anna,
        "properties": {"platform": "maps", "text": "Anna Smirnova, +7 916 123-45-67"}}))
    raw.flush()
    raw.close()
    # a generous idle limit: under load the first fetch after joining took over 2 s once
    assert worker(store, broker, topic, group="after-forget").run(until_idle=5).quarantined == 1
    dead = KafkaConsumer(f"{topic}.dead-letter", bootstrap_servers=broker, auto_offset_reset="earliest",
                         consumer_timeout_ms=5000)
    [letter] = list(dead)
    dead.close()
    written = letter.value + b"".join(v for _, v in letter.headers) + (letter.key or b"")
    for secret in (b"CRM-ANNA-77", b"79161234567", b"anna.s@example.ru", b"Anna Smirnova", b"916 123"):
        assert secret not in written, secret
    assert orjson.loads(letter.value)["type"] == "review" and dict(letter.headers)["journey-code"] == b"naive_timestamp"


def test_the_producer_refuses_a_bad_touch_at_the_caller(broker: str, topic: str) -> None:
    with TouchProducer(broker, topic) as producer, pytest.raises(InvalidTouchError, match="timezone"):
        producer.send(touch(occurred_at="2025-03-01T09:30:00"))
    consumer = KafkaConsumer(topic, bootstrap_servers=broker, auto_offset_reset="earliest", consumer_timeout_ms=3000)
    assert list(consumer) == []
    consumer.close()


def _wait_until_stored(path: Path, *, deadline: float) -> None:
    """Until the worker has stored its first batch (polled from outside, as a reader)."""
    import sqlite3

    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:  # never creates it
                if con.execute("SELECT count(*) FROM stored_events").fetchone()[0]:
                    return
        except sqlite3.OperationalError:  # not created yet, or no table yet
            pass
        time.sleep(0.005)
    raise AssertionError("the worker stored nothing in time")


def test_a_worker_killed_mid_run_loses_and_doubles_nothing(broker: str, topic: str, tmp_path: Path) -> None:
    records = produce(broker, topic, 3000)
    env = {**os.environ, "JOURNEY_HOME": str(tmp_path), "JOURNEY_KAFKA_BOOTSTRAP": broker,
           "JOURNEY_KAFKA_TOPIC": topic, "JOURNEY_KAFKA_GROUP": f"group-{topic}", "JOURNEY_BATCH_SIZE": "20"}
    env.pop("JOURNEY_EVENT_STORE", None)
    command = [sys.executable, "-m", "journey", "ingest-kafka", "--until-idle", "3"]
    victim = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert victim.stderr is not None
    for line in victim.stderr:
        if "partitions assigned" in line:
            break
    _wait_until_stored(tmp_path / "events.sqlite", deadline=time.monotonic() + 120)  # then at once: mid-run
    victim.kill()
    assert victim.wait() == -signal.SIGKILL
    store = EventStore(open_sqlite(str(tmp_path / "events.sqlite")))
    stored_before = store.position()
    assert 0 < stored_before < len(records), "the worker was not killed mid-run"
    resumed = subprocess.run(command + ["--json"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    ids = [e.event_id for _, e in store.read()]
    assert len(ids) == len(set(ids)) == len(records)


def test_two_workers_in_one_group_share_the_partitions(broker: str, topic: str, pg_url: str, tmp_path: Path) -> None:
    """The deployed topology: two workers, one group, the PostgreSQL store, the projector."""
    produce(broker, topic, 1500)
    stop = threading.Event()
    results: list = []
    workers = [worker(EventStore(open_postgres(pg_url)), broker, topic) for _ in range(2)]
    threads = [threading.Thread(target=lambda w=w: results.append(w.run(stop=stop))) for w in workers]
    for thread in threads:
        thread.start()
    store = EventStore(open_postgres(pg_url))
    deadline = time.monotonic() + 120
    while store.position() < 1500 and time.monotonic() < deadline:
        time.sleep(0.2)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    ids = [e.event_id for _, e in store.read()]
    assert len(ids) == len(set(ids)) == 1500
    assert sum(r.accepted for r in results) == 1500
    assert all(r.read > 0 for r in results), [r.read for r in results]  # both got partitions
    con = project(store, tmp_path / "p.duckdb").con
    assert rows(con, "SELECT count(*), count(DISTINCT event_id) FROM touchpoints WHERE type <> 'referred_friend'") == [(1500, 1500)]


def test_status_shows_the_consumer_lag(broker: str, topic: str, tmp_path: Path) -> None:
    import json

    from tests.commands import journey

    # Tansu answers ListOffsets with the last record batch's base offset + 1 (measured: 1, 1
    # and 40 for 120 batched records), so this test sends one record per batch; Kafka
    # itself reports the true end offsets.
    produce(broker, topic, 120, one_by_one=True)
    env = {"JOURNEY_KAFKA_BOOTSTRAP": broker, "JOURNEY_KAFKA_TOPIC": topic}
    before = json.loads(journey("status", "--json", home=tmp_path, **env).stdout)
    assert before["consumer_lag"] == 120
    store = EventStore(open_sqlite(str(tmp_path / "events.sqlite")))
    worker(store, broker, topic).run(until_idle=2)
    after = json.loads(journey("status", "--json", home=tmp_path, **env).stdout)
    assert after["consumer_lag"] == 0
    assert after["position"] == 120


def test_the_worker_stops_cleanly_on_sigterm(broker: str, topic: str, tmp_path: Path) -> None:
    produce(broker, topic, 50)
    env = {**os.environ, "JOURNEY_HOME": str(tmp_path), "JOURNEY_KAFKA_BOOTSTRAP": broker, "JOURNEY_KAFKA_TOPIC": topic,
           "JOURNEY_KAFKA_GROUP": f"group-{topic}"}
    env.pop("JOURNEY_EVENT_STORE", None)
    process = subprocess.Popen([sys.executable, "-m", "journey", "ingest-kafka", "--json"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    for line in process.stderr:
        if "partitions assigned" in line:
            break
    time.sleep(1)
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    import json

    assert json.loads(out)["accepted"] == 50


def test_the_worker_seals_in_worker_processes_like_the_file_ingest(broker: str, topic: str, tmp_path: Path) -> None:
    """The same pipeline as `journey ingest`: two worker processes validate and seal,
    each with its own key-store connection; the worker only appends, in order."""
    from journey.crypto.keys import SQLiteKeyStore
    from journey.crypto.sealing import SealerSpec
    from tests.stores import WRAP

    records = produce(broker, topic, 900)
    keys_path = tmp_path / "keys.sqlite"
    store = sealed(open_sqlite(str(tmp_path / "events.sqlite")), SQLiteKeyStore(str(keys_path), WRAP))
    spec = SealerSpec(f"sqlite:///{keys_path}", b"m" * 32, b"test-secret-0123456789abcdef")
    summary = KafkaIngestWorker(store, KafkaSettings(broker, topic, f"{topic}.dead-letter", f"group-{topic}",
                                                     max_batch=100), workers=2, sealing=spec).run(until_idle=2)
    assert (summary.read, summary.accepted, summary.quarantined) == (900, 900, 0)
    stored = {e.event_id: e.touch for _, e in store.read()}
    assert stored == {r["event_id"]: orjson.loads(parse_touch(orjson.dumps(r)).content_json()) for r in records}
    phones = {t["customer"]["phone"] for t in stored.values() if "phone" in t.get("customer", {})}
    data = b"".join(p.read_bytes() for p in tmp_path.glob("events.sqlite*"))
    assert phones and not any(p.encode() in data for p in phones)
    positions = [store.recorder.max_tracking_id(tracking_name(topic, p)) for p in range(3)]
    assert sum(p + 1 for p in positions if p is not None) == 900


def test_a_worker_that_cannot_reach_kafka_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """librdkafka alone would retry in the background forever; the worker fails at start."""
    import socket

    from journey.errors import JourneyError
    from journey.ingest import kafka

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(kafka, "_CONNECT_TIMEOUT", 2.0)
    store = EventStore(open_sqlite(str(tmp_path / "events.sqlite")))
    started = time.monotonic()
    with pytest.raises(JourneyError, match=f"cannot reach Kafka at 127.0.0.1:{port}.*JOURNEY_KAFKA_BOOTSTRAP"):
        worker(store, f"127.0.0.1:{port}", "touches")
    assert time.monotonic() - started < 10
