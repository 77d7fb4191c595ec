"""The composition root: wires adapters from ``Settings``. Nothing else picks adapters.

A command builds one ``Adapters`` from the settings and hands its parts to the use
cases; a test builds one around in-memory adapters instead. Each part is opened on
first use and then kept, so a command opens the event store or the key store once.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import sqlite3
import stat
from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from journey.config import Settings
from journey.errors import ConfigurationError, EventStoreError

# The adapters load when a command first uses them: a command that only reads the
# published snapshot (`journey sql`) never loads the event store, the crypto or the projector.
if TYPE_CHECKING:
    from journey.crypto.keys import KeyStore
    from journey.crypto.policy import PropertyPolicy
    from journey.crypto.pseudonym import Pseudonymiser
    from journey.crypto.sealing import SealerSpec
    from journey.ingest.kafka import KafkaIngestWorker
    from journey.ingest.pipeline import Ingestor
    from journey.ingest.sources import RawRecord
    from journey.producer import TouchProducer
    from journey.projections.operations import ProjectionPaths
    from journey.store.event_store import EventStore
    from journey.store.recorder import JourneyRecorder

__all__ = [
    "Adapters",
    "event_store_location",
    "open_event_store",
    "open_ingestor",
    "open_kafka_worker",
    "open_key_store",
    "open_policy",
    "open_pseudonymiser",
    "open_recorder",
    "open_reseal_target",
    "projection_paths",
    "sealer_spec",
]


class Adapters:
    """What one command works with, wired from ``settings``. Pass ``store``,
    ``key_store`` or ``pseudonymiser`` to use other adapters (in-memory ones in tests)."""

    def __init__(self, settings: Settings, *, store: EventStore | None = None,
                 key_store: KeyStore | None = None, pseudonymiser: Pseudonymiser | None = None) -> None:
        self.settings = settings
        if store is not None:
            self.store = store
        if key_store is not None:
            self.key_store = key_store
        if pseudonymiser is not None:
            self.pseudonymiser = pseudonymiser

    @cached_property
    def key_store(self) -> KeyStore:
        return open_key_store(self.settings)

    @cached_property
    def pseudonymiser(self) -> Pseudonymiser:
        return open_pseudonymiser(self.settings)

    @cached_property
    def store(self) -> EventStore:
        from journey.crypto.sealer import Sealer
        from journey.store.event_store import EventStore

        # the writer names keys by pseudonym; a small cache: identifiers recur within days, not years
        return EventStore(open_recorder(self.settings),
                          Sealer(self.key_store, open_pseudonymiser(self.settings, 65_536).key,
                                 open_policy(self.settings)))

    @cached_property
    def ingestor(self) -> Ingestor:
        return open_ingestor(self.settings, self.store)

    @property
    def projection_paths(self) -> ProjectionPaths:
        return projection_paths(self.settings)

    @property
    def analytics(self) -> Path:
        """The published snapshot analysts and the read-side commands open."""
        return self.settings.analytics_path

    @property
    def event_store_location(self) -> str:
        return event_store_location(self.settings)

    @property
    def home(self) -> Path:
        """Where the embedded stores, the demo clinic and its report live (JOURNEY_HOME)."""
        return self.settings.home

    @property
    def default_region(self) -> str | None:
        """The country of phone numbers given without ``+`` (JOURNEY_DEFAULT_REGION)."""
        return self.settings.default_region

    @property
    def stage_model(self) -> Path | None:
        """The configured stage model file; None is the shipped default."""
        return self.settings.stage_model_path

    @property
    def segments(self) -> Path | None:
        """The configured segments file; None is the shipped default."""
        return self.settings.segments_path

    @property
    def worklists(self) -> Path | None:
        """The configured worklist rules file; None is the shipped default."""
        return self.settings.worklists_path

    @property
    def kafka_target(self) -> tuple[str, str] | None:
        """(bootstrap, topic) when this deployment uses Kafka, else None."""
        return (self.settings.kafka_bootstrap, self.settings.kafka_topic) if self.settings.kafka_configured else None

    def read_jsonl(self, path: str) -> Iterator[RawRecord]:
        """The records of a JSON Lines file (``-`` for stdin) under the configured record limit."""
        from journey.ingest.sources import read_jsonl

        return read_jsonl(path, max_bytes=self.settings.max_record_bytes)

    def producer(self, bootstrap: str | None = None, topic: str | None = None) -> TouchProducer:
        """A producer to the touches topic; the arguments override the settings."""
        from journey.producer import TouchProducer

        return TouchProducer(bootstrap or self.settings.kafka_bootstrap, topic or self.settings.kafka_topic,
                             default_region=self.settings.default_region)

    def reseal_target(self, url: str) -> EventStore:
        """A new event store at ``url`` sealing with the configured keys (``journey reseal``)."""
        return open_reseal_target(self.settings, url)

    def kafka_worker(self, bootstrap: str | None = None, topic: str | None = None,
                     group: str | None = None) -> KafkaIngestWorker:
        return open_kafka_worker(self.settings, self.store, bootstrap=bootstrap, topic=topic, group=group)


def event_store_location(settings: Settings) -> str:
    """Where the event store is, fit to print (a PostgreSQL password is hidden)."""
    if settings.is_postgres:
        from journey.store.postgres import redact

        return redact(settings.event_store_url)
    return str(settings.sqlite_path)


def open_kafka_worker(settings: Settings, store: EventStore, *, bootstrap: str | None = None,
                      topic: str | None = None, group: str | None = None) -> KafkaIngestWorker:
    """A Kafka consumer-group worker storing into ``store``; the options override settings."""
    from journey.ingest.kafka import KafkaIngestWorker, KafkaSettings

    topic = topic or settings.kafka_topic
    kafka = KafkaSettings(bootstrap or settings.kafka_bootstrap, topic, settings.dead_letter_topic_of(topic),
                          group or settings.kafka_group, max_batch=settings.batch_size)
    # the file ingest's pipeline: validation and sealing in JOURNEY_INGEST_WORKERS processes,
    # each with its own key-store connection
    return KafkaIngestWorker(store, kafka, default_region=settings.default_region,
                             max_record_bytes=settings.max_record_bytes, workers=settings.ingest_workers,
                             sealing=sealer_spec(settings) if store.sealer is not None else None)


def open_recorder(settings: Settings) -> JourneyRecorder:
    """Open the configured event store database, creating its tables if needed."""
    from eventsourcing.persistence import InterfaceError, OperationalError

    if settings.is_postgres:
        from journey.store.postgres import open_postgres, redact

        try:
            return open_postgres(settings.event_store_url)
        except (OperationalError, InterfaceError) as error:
            raise EventStoreError(
                f"cannot reach the PostgreSQL event store at {redact(settings.event_store_url)}: "
                f"{str(error).splitlines()[0] if str(error) else type(error).__name__}; check that "
                "the server runs and JOURNEY_EVENT_STORE is right"
            ) from None
    from journey.store.sqlite import open_sqlite

    path = settings.sqlite_path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open_sqlite(str(path))
    except (OSError, OperationalError, InterfaceError) as error:
        raise EventStoreError(
            f"cannot open the SQLite event store at {path}: {error}; check the path "
            "and its permissions (JOURNEY_HOME or JOURNEY_EVENT_STORE)"
        ) from None


def open_key_store(settings: Settings) -> KeyStore:
    """The per-customer data keys, wrapped with the master key."""
    from journey.crypto.keys import KeyWrap, key_store_at

    wrap = KeyWrap(_master_key(settings))
    url = settings.key_store_url
    if url.startswith("postgres"):
        from journey.store.postgres import redact

        try:
            return key_store_at(url, wrap)
        except Exception as error:  # psycopg's errors: connection, permission
            raise EventStoreError(
                f"cannot open the key store at {redact(url)}: {str(error).splitlines()[0]}; "
                "check JOURNEY_KEY_STORE and that the server runs"
            ) from None
    path = Path(url.removeprefix("sqlite:///"))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return key_store_at(url, wrap)
    except (OSError, sqlite3.Error) as error:
        raise EventStoreError(f"cannot open the key store at {path}: {error}; check JOURNEY_KEY_STORE") from None


def open_event_store(settings: Settings) -> EventStore:
    """The event store, sealing personal fields with the key store's data keys."""
    return Adapters(settings).store


def open_reseal_target(settings: Settings, url: str) -> EventStore:
    """A new event store at ``url`` sealing with the configured key store (for ``reseal``)."""
    if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ConfigurationError(f"the target store must be sqlite:///PATH or postgresql://... (got {url!r})")
    if url == settings.event_store_url:
        raise ConfigurationError("the target store is the configured store; name a new one")
    return open_event_store(dataclasses.replace(settings, event_store_url=url))


def open_policy(settings: Settings) -> PropertyPolicy:
    """The property policy: which custom properties analysts may see (the rest are sealed)."""
    from journey.crypto.policy import load_policy

    return load_policy(settings.property_policy_path)


def sealer_spec(settings: Settings) -> SealerSpec:
    """What an ingest worker needs to open its own key store and seal touches."""
    from journey.crypto.sealing import SealerSpec

    open_key_store(settings).close()  # fail here, with the setting named, not in a worker
    return SealerSpec(settings.key_store_url, _master_key(settings), _hmac_secret(settings), open_policy(settings))


def open_ingestor(settings: Settings, store: EventStore | None = None) -> Ingestor:
    from journey.ingest.pipeline import Ingestor

    store = store or open_event_store(settings)
    # worker processes seal with keys they open from the settings; without workers the
    # store's own sealer does (an in-memory key store cannot be shared with a process)
    return Ingestor(
        store,
        sealing=sealer_spec(settings) if store.sealer is not None and settings.ingest_workers > 0 else None,
        default_region=settings.default_region,
        max_record_bytes=settings.max_record_bytes,
        batch_size=settings.batch_size,
        workers=settings.ingest_workers,
    )


def projection_paths(settings: Settings) -> ProjectionPaths:
    from journey.projections.operations import ProjectionPaths

    return ProjectionPaths(settings.projection_path, settings.analytics_path,
                           settings.projection_batch, settings.duckdb_memory, settings.stage_model_path)


def open_pseudonymiser(settings: Settings, cache: int = 1_000_000) -> Pseudonymiser:
    """The pseudonym secret: from the environment, or from a file only its owner can
    read (created on first use). The secret never enters a database or a log."""
    from journey.crypto.pseudonym import Pseudonymiser

    return Pseudonymiser(_hmac_secret(settings), cache)


def _hmac_secret(settings: Settings) -> bytes:
    if settings.hmac_secret is not None:
        secret = settings.hmac_secret.encode()
    else:
        secret = _secret_file(settings.hmac_secret_file, lambda: secrets.token_hex(32))
    if len(secret) < 16:
        raise ConfigurationError("the HMAC secret is shorter than 16 bytes; use a long random value")
    return secret


def _master_key(settings: Settings) -> bytes:
    """The master key: 32 bytes given as 64 hex digits, from the environment or a 0600 file."""
    if settings.master_key is not None:
        text, where = settings.master_key, "JOURNEY_MASTER_KEY"
    else:
        text, where = _secret_file(settings.master_key_file, lambda: secrets.token_hex(32)).decode(), str(
            settings.master_key_file)
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigurationError(f"the master key in {where} must be 64 hex digits (32 bytes)")
    return key


def _secret_file(path: Path, make: Callable[[], str]) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(make())
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigurationError(
            f"{path} is readable by others (mode {mode:o}); run `chmod 600 {path}`"
        )
    return path.read_bytes().strip()
