"""The Kafka ingest worker: a consumer-group member that validates touches and
appends them to the event store exactly once.

Exactly once: each partition's batch is appended together with the Kafka position it
reaches (eventsourcing ``Tracking``, application name ``kafka:<topic>:<partition>``)
in one transaction. On (re)assignment the worker seeks each partition to the stored
position + 1, so a crash anywhere (kill -9 included) neither loses nor doubles a
touch. Consumer offsets are still committed, after the store, for lag monitoring.

Invalid messages (undecodable ones too) are quarantined whole in the same transaction
and then sent to the dead-letter topic with the reason in headers and the value
redacted (``journey.crypto.redact``): no personal data ever enters that topic, so
forgetting a customer never has to chase copies through Kafka.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from threading import Event
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition
from eventsourcing.persistence import Tracking

from journey.crypto.redact import redact_reason, redact_record
from journey.crypto.sealing import SealerSpec
from journey.errors import JourneyError
from journey.ingest.pipeline import IngestSummary, Ingestor
from journey.ingest.sources import RawRecord
from journey.limits import MAX_RECORD_BYTES
from journey.store.event_store import AlreadyTracked, EventStore
from journey.store.records import Rejection

__all__ = ["KafkaIngestWorker", "KafkaSettings", "tracking_name"]

log = logging.getLogger("journey.kafka")

_CONNECT_TIMEOUT = 10.0
"""Seconds to reach the brokers at start before saying Kafka cannot be reached."""
_PREFETCH_KIB = 32 * 1024
"""What the client may fetch ahead of the pipeline (librdkafka's default is 64 MiB)."""


def tracking_name(topic: str, partition: int) -> str:
    return f"kafka:{topic}:{partition}"


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap: str
    topic: str
    dead_letter_topic: str
    group: str
    max_batch: int = 5000
    session_timeout_ms: int = 6000


def _unreachable(bootstrap: str, error: object) -> JourneyError:
    return JourneyError(f"cannot reach Kafka at {bootstrap}: {error}; check JOURNEY_KAFKA_BOOTSTRAP "
                        "and that the brokers run")


def _client_config(bootstrap: str) -> dict[str, Any]:
    """What every client of the worker shares: the brokers, and librdkafka's log lines
    going to the ``journey.kafka`` logger instead of stderr."""
    return {"bootstrap.servers": bootstrap, "logger": log}


class KafkaIngestWorker:
    """Polls partition batches and puts them through the ingest pipeline: with
    ``workers``, validation and sealing (``sealing``) run in worker processes on the
    batches polled ahead while this process appends, in order, each batch with its
    Kafka position.

    The consumer is librdkafka's (confluent-kafka): it fetches and decodes in C threads,
    so this process's one core is left to appending (kafka-python decoded each record in
    Python: about 40% of this process's samples; see docs/design.md "Kafka")."""

    def __init__(self, store: EventStore, settings: KafkaSettings, *, default_region: str | None = None,
                 max_record_bytes: int = MAX_RECORD_BYTES, workers: int = 0, sealing: SealerSpec | None = None) -> None:
        self.store = store
        self.settings = settings
        self.validator = Ingestor(store, default_region=default_region, max_record_bytes=max_record_bytes,
                                  workers=workers, sealing=sealing)
        consumer = None
        try:
            consumer = Consumer({
                **_client_config(settings.bootstrap),
                "group.id": settings.group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": settings.session_timeout_ms,
                "heartbeat.interval.ms": max(settings.session_timeout_ms // 3, 500),
                "queued.max.messages.kbytes": _PREFETCH_KIB,
            })
            consumer.list_topics(timeout=_CONNECT_TIMEOUT)  # fail now, not in the poll loop
            self.dead_letters = Producer({**_client_config(settings.bootstrap), "acks": "all"})
        except KafkaException as error:
            if consumer is not None:  # its background threads would linger until collected
                consumer.close()
            raise _unreachable(settings.bootstrap, error.args[0] if error.args else error) from None
        self.consumer = consumer
        self.consumer.subscribe([settings.topic], on_assign=self._resume, on_revoke=self._revoked)

    def _resume(self, consumer: Consumer, assigned: list[TopicPartition]) -> None:
        """On assignment, continue each partition from the position the store recorded."""
        for tp in assigned:
            stored = self.store.recorder.max_tracking_id(tracking_name(tp.topic, tp.partition))
            if stored is not None:
                tp.offset = stored + 1
        consumer.assign(assigned)
        log.info("partitions assigned: %s", sorted(tp.partition for tp in assigned))

    def _revoked(self, consumer: Consumer, revoked: list[TopicPartition]) -> None:
        consumer.unassign()
        log.info("partitions revoked: %s", sorted(tp.partition for tp in revoked))

    def run(self, *, stop: Event | None = None, until_idle: float | None = None,
            progress: Callable[[int], None] | None = None) -> IngestSummary:
        """Consume until ``stop`` is set, or until nothing arrived for ``until_idle`` seconds."""
        stop = stop or Event()
        summary = IngestSummary()
        started = time.monotonic()
        polled: deque[tuple[TopicPartition, list[Message]]] = deque()
        try:
            batches = self._poll(stop, until_idle, polled)
            for _records, (accepted, rejected) in self.validator.validated(batches, stream=True):
                tp, messages = polled.popleft()
                self._store(tp, messages, accepted, rejected, summary)
                if progress:
                    progress(len(messages))
        finally:
            summary.seconds = time.monotonic() - started
            self.close()
        return summary

    def _poll(self, stop: Event, until_idle: float | None,
              polled: deque[tuple[TopicPartition, list[Message]]]) -> Iterator[list[RawRecord]]:
        """Partition batches as records, in poll order (``polled`` gets each one's
        partition and messages), until ``stop`` or ``until_idle`` seconds of nothing."""
        last_message = time.monotonic()
        while not stop.is_set():
            messages = self.consumer.consume(self.settings.max_batch, 0.5)
            batch = _by_partition(messages)
            if not batch:
                if not self.consumer.assignment():  # still joining the group: not idle yet
                    last_message = time.monotonic()
                elif until_idle is not None and time.monotonic() - last_message >= until_idle:
                    return
                yield []  # a tick: what is in flight gets stored now
                continue
            last_message = time.monotonic()
            for (topic, partition), part in batch.items():
                source = f"kafka:{topic}/{partition}"
                polled.append((TopicPartition(topic, partition), part))
                yield [RawRecord(source, f"offset {m.offset()}", m.value() or b"") for m in part]

    def _store(self, tp: TopicPartition, messages: list[Message], accepted: list, rejected: list[Rejection],
               summary: IngestSummary) -> None:
        source = f"kafka:{tp.topic}/{tp.partition}"
        last = messages[-1].offset()
        try:
            outcome = self.store.append(accepted, rejected, tracking=Tracking(tracking_name(tp.topic, tp.partition), last))
        except AlreadyTracked:
            log.info("%s up to offset %s was stored already (redelivery); skipped", source, last)
            summary.read += len(messages)
            summary.duplicates += len(messages)
            return
        self._dead_letter(tp, messages, rejected)
        self._commit(tp, last)
        summary.read += len(messages)
        summary.accepted += outcome.accepted
        summary.duplicates += outcome.duplicates
        summary.quarantined += outcome.quarantined

    def _commit(self, tp: TopicPartition, last: int) -> None:
        """Commit the group's offset after the store (for lag monitoring: the store's
        tracked positions are the truth). A partition revoked meanwhile cannot be
        committed by this member; its next owner resumes from the store."""
        try:
            self.consumer.commit(offsets=[TopicPartition(tp.topic, tp.partition, last + 1)], asynchronous=False)
        except KafkaException as error:
            log.warning("%s: offset %s stored but not committed to the group (%s)", tp, last + 1, error)

    def _dead_letter(self, tp: TopicPartition, messages: list[Message], rejected: list[Rejection]) -> None:
        if not rejected:
            return
        by_offset = {f"offset {m.offset()}": m for m in messages}
        for rejection in rejected:
            message = by_offset[rejection.locator]
            headers = [("journey-reason", redact_reason(rejection.reason).encode()),
                       ("journey-code", rejection.code.encode()),
                       ("journey-source", f"{tp.topic}/{tp.partition}@{message.offset()}".encode())]
            # personal data stays in the quarantine (which forgetting blanks), never in the topic
            self.dead_letters.produce(self.settings.dead_letter_topic, value=redact_record(message.value() or b""),
                                      headers=headers)
        if self.dead_letters.flush(30) > 0:
            raise JourneyError(f"could not write {len(rejected)} dead letters to {self.settings.dead_letter_topic} "
                               "within 30 s (they are in the quarantine); check the topic exists and Kafka runs")
        log.warning("%s: %s invalid messages quarantined and sent to %s", tp, len(rejected),
                    self.settings.dead_letter_topic)

    def close(self) -> None:
        try:
            self.consumer.close()
        finally:
            self.dead_letters.flush(30)


def _by_partition(messages: list[Message]) -> dict[tuple[str, int], list[Message]]:
    """The polled messages per partition, in offset order; a client error is logged
    (librdkafka retries by itself) and a fatal one raised. (Partition-end events are off:
    librdkafka's default.)"""
    batch: dict[tuple[str, int], list[Message]] = {}
    for message in messages:
        error = message.error()
        if error is not None:
            if error.fatal():
                raise JourneyError(f"Kafka consumer failed: {error.str()}; restart the worker")
            log.warning("Kafka: %s", error.str())
            continue
        batch.setdefault((message.topic(), message.partition()), []).append(message)
    return batch


def consumer_lag(store: EventStore, bootstrap: str, topic: str) -> dict[int, int]:
    """Per partition: messages in the topic not yet stored (the store's tracked offsets,
    which are the truth for exactly-once, not the group's committed offsets)."""
    probe = Consumer({**_client_config(bootstrap), "group.id": "journey-lag-probe", "enable.auto.commit": False})
    try:
        metadata = probe.list_topics(topic, timeout=5)
        described = metadata.topics.get(topic)
        if described is None or described.error is not None:
            return {}
        ends = {p: probe.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1] for p in described.partitions}
    finally:
        probe.close()
    lag = {}
    for partition, end in ends.items():
        stored = store.recorder.max_tracking_id(tracking_name(topic, partition))
        lag[partition] = end - (stored + 1 if stored is not None else 0)
    return dict(sorted(lag.items()))
