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

from eventsourcing.persistence import Tracking
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from journey.crypto.sealing import SealerSpec
from journey.errors import JourneyError
from journey.ingest.pipeline import IngestSummary, Ingestor
from journey.ingest.sources import RawRecord
from journey.limits import MAX_RECORD_BYTES
from journey.crypto.redact import redact_reason, redact_record
from journey.store.event_store import AlreadyTracked, EventStore
from journey.store.records import Rejection

__all__ = ["KafkaIngestWorker", "KafkaSettings", "tracking_name"]

log = logging.getLogger("journey.kafka")


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


class _Resume(ConsumerRebalanceListener):
    """On assignment, continue each partition from the position the store recorded."""

    def __init__(self, worker: KafkaIngestWorker) -> None:
        self.worker = worker

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        log.info("partitions revoked: %s", sorted(tp.partition for tp in revoked))

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        for tp in assigned:
            stored = self.worker.store.recorder.max_tracking_id(tracking_name(tp.topic, tp.partition))
            if stored is not None:
                self.worker.consumer.seek(tp, stored + 1)
        log.info("partitions assigned: %s", sorted(tp.partition for tp in assigned))


class KafkaIngestWorker:
    """Polls partition batches and puts them through the ingest pipeline: with
    ``workers``, validation and sealing (``sealing``) run in worker processes on the
    batches polled ahead while this process appends, in order, each batch with its
    Kafka position."""

    def __init__(self, store: EventStore, settings: KafkaSettings, *, default_region: str | None = None,
                 max_record_bytes: int = MAX_RECORD_BYTES, workers: int = 0, sealing: SealerSpec | None = None) -> None:
        self.store = store
        self.settings = settings
        self.validator = Ingestor(store, default_region=default_region, max_record_bytes=max_record_bytes,
                                  workers=workers, sealing=sealing)
        try:
            self.consumer = KafkaConsumer(
                bootstrap_servers=settings.bootstrap, group_id=settings.group,
                enable_auto_commit=False, auto_offset_reset="earliest",
                session_timeout_ms=settings.session_timeout_ms,
                heartbeat_interval_ms=max(settings.session_timeout_ms // 3, 500),
                max_poll_records=settings.max_batch,
            )
            self.dead_letters = KafkaProducer(bootstrap_servers=settings.bootstrap, acks="all")
        except KafkaError as error:
            raise JourneyError(
                f"cannot reach Kafka at {settings.bootstrap}: {error}; check JOURNEY_KAFKA_BOOTSTRAP"
            ) from None
        self.consumer.subscribe([settings.topic], listener=_Resume(self))

    def run(self, *, stop: Event | None = None, until_idle: float | None = None,
            progress: Callable[[int], None] | None = None) -> IngestSummary:
        """Consume until ``stop`` is set, or until nothing arrived for ``until_idle`` seconds."""
        stop = stop or Event()
        summary = IngestSummary()
        started = time.monotonic()
        polled: deque[tuple[TopicPartition, list]] = deque()
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
              polled: deque[tuple[TopicPartition, list]]) -> Iterator[list[RawRecord]]:
        """Partition batches as records, in poll order (``polled`` gets each one's
        partition and messages), until ``stop`` or ``until_idle`` seconds of nothing."""
        last_message = time.monotonic()
        while not stop.is_set():
            batch = self.consumer.poll(timeout_ms=500, max_records=self.settings.max_batch)
            if not batch:
                if not self.consumer.assignment():  # still joining the group: not idle yet
                    last_message = time.monotonic()
                elif until_idle is not None and time.monotonic() - last_message >= until_idle:
                    return
                yield []  # a tick: what is in flight gets stored now
                continue
            last_message = time.monotonic()
            for tp, messages in batch.items():
                source = f"kafka:{tp.topic}/{tp.partition}"
                polled.append((tp, messages))
                yield [RawRecord(source, f"offset {m.offset}", m.value or b"") for m in messages]

    def _store(self, tp: TopicPartition, messages: list, accepted: list, rejected: list[Rejection],
               summary: IngestSummary) -> None:
        source = f"kafka:{tp.topic}/{tp.partition}"
        last = messages[-1].offset
        try:
            outcome = self.store.append(accepted, rejected, tracking=Tracking(tracking_name(tp.topic, tp.partition), last))
        except AlreadyTracked:
            log.info("%s up to offset %s was stored already (redelivery); skipped", source, last)
            summary.read += len(messages)
            summary.duplicates += len(messages)
            return
        self._dead_letter(tp, messages, rejected)
        self.consumer.commit({tp: OffsetAndMetadata(last + 1, None, -1)})
        summary.read += len(messages)
        summary.accepted += outcome.accepted
        summary.duplicates += outcome.duplicates
        summary.quarantined += outcome.quarantined

    def _dead_letter(self, tp: TopicPartition, messages: list, rejected: list[Rejection]) -> None:
        if not rejected:
            return
        by_offset = {f"offset {m.offset}": m for m in messages}
        for rejection in rejected:
            message = by_offset[rejection.locator]
            headers = [("journey-reason", redact_reason(rejection.reason).encode()),
                       ("journey-code", rejection.code.encode()),
                       ("journey-source", f"{tp.topic}/{tp.partition}@{message.offset}".encode())]
            # personal data stays in the quarantine (which forgetting blanks), never in the topic
            self.dead_letters.send(self.settings.dead_letter_topic, value=redact_record(message.value or b""),
                                   key=None, headers=headers)
        self.dead_letters.flush()
        log.warning("%s: %s invalid messages quarantined and sent to %s", tp, len(rejected),
                    self.settings.dead_letter_topic)

    def close(self) -> None:
        try:
            self.consumer.close()
        finally:
            self.dead_letters.close()


def consumer_lag(store: EventStore, bootstrap: str, topic: str) -> dict[int, int]:
    """Per partition: messages in the topic not yet stored (the store's tracked offsets,
    which are the truth for exactly-once, not the group's committed offsets)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        consumer.topics()  # a full metadata fetch, so every partition of the topic is known
        partitions = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
    finally:
        consumer.close()
    lag = {}
    for tp, end in ends.items():
        stored = store.recorder.max_tracking_id(tracking_name(topic, tp.partition))
        lag[tp.partition] = end - (stored + 1 if stored is not None else 0)
    return dict(sorted(lag.items()))
