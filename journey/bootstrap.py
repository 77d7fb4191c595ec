"""The composition root: wires adapters from ``Settings``. Nothing else picks adapters."""

from __future__ import annotations

import dataclasses
import os
import secrets
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from eventsourcing.persistence import OperationalError, InterfaceError

from journey.config import Settings
from journey.errors import ConfigurationError, EventStoreError
from journey.ingest.pipeline import Ingestor
from journey.crypto.keys import KeyStore, KeyWrap, key_store_at
from journey.crypto.policy import PropertyPolicy, load_policy
from journey.crypto.sealing import SealerSpec
from journey.crypto.sealer import Sealer
from journey.projections.operations import ProjectionPaths
from journey.crypto.pseudonym import Pseudonymiser
from journey.store.event_store import EventStore
from journey.store.recorder import JourneyRecorder

if TYPE_CHECKING:
    from journey.ingest.kafka import KafkaIngestWorker, KafkaSettings

__all__ = ["open_event_store", "open_ingestor", "open_kafka_worker", "open_key_store", "open_policy",
           "open_reseal_target", "sealer_spec", "open_pseudonymiser", "open_recorder", "projection_paths"]


def open_recorder(settings: Settings) -> JourneyRecorder:
    """Open the configured event store database, creating its tables if needed."""
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
    recorder = open_recorder(settings)
    # the writer names keys by pseudonym; a small cache: identifiers recur within days, not years
    return EventStore(recorder, Sealer(open_key_store(settings), open_pseudonymiser(settings, 65_536).key,
                                       open_policy(settings)))


def open_reseal_target(settings: Settings, url: str) -> EventStore:
    """A new event store at ``url`` sealing with the configured key store (for ``reseal``)."""
    if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ConfigurationError(f"the target store must be sqlite:///PATH or postgresql://... (got {url!r})")
    if url == settings.event_store_url:
        raise ConfigurationError("the target store is the configured store; name a new one")
    return open_event_store(dataclasses.replace(settings, event_store_url=url))


def open_policy(settings: Settings) -> PropertyPolicy:
    """The property policy: which custom properties analysts may see (the rest are sealed)."""
    return load_policy(settings.property_policy_path)


def sealer_spec(settings: Settings) -> SealerSpec:
    """What an ingest worker needs to open its own key store and seal touches."""
    open_key_store(settings).close()  # fail here, with the setting named, not in a worker
    return SealerSpec(settings.key_store_url, _master_key(settings), _hmac_secret(settings), open_policy(settings))


def open_ingestor(settings: Settings, store: EventStore | None = None) -> Ingestor:
    store = store or open_event_store(settings)
    return Ingestor(
        store,
        sealing=sealer_spec(settings) if store.sealer is not None else None,
        default_region=settings.default_region,
        max_record_bytes=settings.max_record_bytes,
        batch_size=settings.batch_size,
        workers=settings.ingest_workers,
    )


def open_kafka_worker(settings: Settings, kafka: KafkaSettings) -> KafkaIngestWorker:
    """The Kafka ingest worker on the file ingest's pipeline: validation and sealing in
    ``JOURNEY_INGEST_WORKERS`` processes, each with its own key-store connection."""
    from journey.ingest.kafka import KafkaIngestWorker

    store = open_event_store(settings)
    return KafkaIngestWorker(store, kafka, default_region=settings.default_region,
                             max_record_bytes=settings.max_record_bytes, workers=settings.ingest_workers,
                             sealing=sealer_spec(settings))


def projection_paths(settings: Settings) -> ProjectionPaths:
    return ProjectionPaths(settings.projection_path, settings.analytics_path,
                           settings.projection_batch, settings.duckdb_memory, settings.stage_model_path)


def open_pseudonymiser(settings: Settings, cache: int = 1_000_000) -> Pseudonymiser:
    """The pseudonym secret: from the environment, or from a file only its owner can
    read (created on first use). The secret never enters a database or a log."""
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
