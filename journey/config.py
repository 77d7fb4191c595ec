"""Settings from the environment (``JOURNEY_*``), read once by the composition root."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from journey.errors import ConfigurationError
from journey.limits import MAX_RECORD_BYTES

__all__ = ["Settings", "dead_letter_topic"]


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = env.get(name)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ConfigurationError(f"{name}={text!r} is not a whole number") from None
    if not low <= value <= high:
        raise ConfigurationError(f"{name}={value} is out of range; use {low}..{high}")
    return value


def _memory(text: str) -> str:
    if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", text.strip(), re.IGNORECASE):
        raise ConfigurationError(f"JOURNEY_DUCKDB_MEMORY={text!r} is not a size such as 2GB or 512MB")
    return text.strip()


def _key_store(text: str | None, events: str, home: Path) -> str:
    if text:
        if not text.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ConfigurationError(
                f"JOURNEY_KEY_STORE must start with sqlite:/// or postgresql:// (got {text.split('://')[0]!r}://...)"
            )
        return text
    if events.startswith("postgres"):
        return events.split("?")[0] + "?schema=journey_keys"
    return f"sqlite:///{home / 'keys.sqlite'}"


def dead_letter_topic(topic: str) -> str:
    """Where a topic's invalid messages go unless ``JOURNEY_KAFKA_DEAD_LETTER_TOPIC`` says
    otherwise: ``<topic>.dead-letter``."""
    return f"{topic}.dead-letter"


def _existing(env: Mapping[str, str], name: str) -> Path | None:
    text = env.get(name)
    if not text:
        return None
    if not Path(text).is_file():
        raise ConfigurationError(f"{name}={text!r} is not a file")
    return Path(text)


@dataclass(frozen=True)
class Settings:
    """What journey is configured with. Every field has an environment variable.

    - ``JOURNEY_HOME``: where the embedded stores live (default ``./.journey``)
    - ``JOURNEY_EVENT_STORE``: ``postgresql://USER:PASSWORD@HOST:PORT/DB`` or
      ``sqlite:///PATH``; unset means SQLite at ``$JOURNEY_HOME/events.sqlite``
    - ``JOURNEY_DEFAULT_REGION``: ISO country code for phones sent without ``+``
    - ``JOURNEY_BATCH_SIZE``: records per atomic append (default 5000)
    - ``JOURNEY_MAX_RECORD_BYTES``: larger records are quarantined (default 65536)
    - ``JOURNEY_INGEST_WORKERS``: processes validating records while one writes
      (default: the number of CPUs; 0 validates in the writing process)
    - ``JOURNEY_PROJECTION``: the projector's DuckDB file (default ``$JOURNEY_HOME/projection.duckdb``)
    - ``JOURNEY_ANALYTICS``: the published read-only DuckDB file analysts open
      (default ``$JOURNEY_HOME/analytics.duckdb``)
    - ``JOURNEY_PROJECTION_BATCH``: events per projector transaction (default 245760:
      two DuckDB row groups, so large appends are written straight to the file)
    - ``JOURNEY_DUCKDB_MEMORY``: the projector's DuckDB memory limit (default 2GB; DuckDB
      spills to disk beyond it)
    - ``JOURNEY_KAFKA_BOOTSTRAP``: Kafka bootstrap servers (default ``localhost:9092``)
    - ``JOURNEY_KAFKA_TOPIC``: the touches topic (default ``touches``); invalid messages go
      to ``JOURNEY_KAFKA_DEAD_LETTER_TOPIC`` (default ``<topic>.dead-letter``)
    - ``JOURNEY_KAFKA_GROUP``: the ingest workers' consumer group (default ``journey-ingest``)
    - ``JOURNEY_STAGE_MODEL``: the stage model file (TOML; default: the model shipped in
      ``journey/projections/default_stages.toml``); `journey rederive` applies a change
    - ``JOURNEY_SEGMENTS``: the segments file (TOML; default: ``journey/base/default_segments.toml``)
    - ``JOURNEY_WORKLISTS``: the worklist rules (TOML; default: ``journey/base/default_worklists.toml``)
    - ``JOURNEY_PROPERTY_POLICY``: the property policy file (TOML; default: the policy shipped
      in ``journey/crypto/default_properties.toml``): which custom-touch properties analysts
      may see in the clear; every other custom property is sealed with the customer's keys
    - ``JOURNEY_HMAC_SECRET``: the pseudonym secret (at least 16 characters); unset
      means the file ``JOURNEY_HMAC_SECRET_FILE`` (default ``$JOURNEY_HOME/hmac.key``,
      created with mode 0600 on first use)
    - ``JOURNEY_KEY_STORE``: where the per-customer data keys live, apart from the events:
      ``sqlite:///PATH`` or ``postgresql://...[?schema=NAME]``; unset means
      ``$JOURNEY_HOME/keys.sqlite`` beside a SQLite event store, or schema ``journey_keys``
      of the PostgreSQL event store's database
    - ``JOURNEY_MASTER_KEY``: 64 hex digits wrapping the data keys; unset means the file
      ``JOURNEY_MASTER_KEY_FILE`` (default ``$JOURNEY_HOME/master.key``, created with mode
      0600 on first use)
    """

    home: Path
    event_store_url: str
    default_region: str | None = None
    batch_size: int = 5000
    max_record_bytes: int = MAX_RECORD_BYTES
    ingest_workers: int = 1
    projection_path: Path = Path(".journey/projection.duckdb")
    analytics_path: Path = Path(".journey/analytics.duckdb")
    projection_batch: int = 245_760
    duckdb_memory: str = "2GB"
    kafka_bootstrap: str = "localhost:9092"
    kafka_configured: bool = False
    """JOURNEY_KAFKA_BOOTSTRAP is set: this deployment uses Kafka (``journey status`` asks it)."""
    kafka_topic: str = "touches"
    kafka_dead_letter_topic: str = dead_letter_topic("touches")
    kafka_group: str = "journey-ingest"
    hmac_secret: str | None = field(default=None, repr=False)
    hmac_secret_file: Path = Path(".journey/hmac.key")
    key_store_url: str = field(default="sqlite:///.journey/keys.sqlite", repr=False)
    master_key: str | None = field(default=None, repr=False)
    master_key_file: Path = Path(".journey/master.key")
    stage_model_path: Path | None = None
    segments_path: Path | None = None
    worklists_path: Path | None = None
    property_policy_path: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(env.get("JOURNEY_HOME") or ".journey")
        url = env.get("JOURNEY_EVENT_STORE") or f"sqlite:///{home / 'events.sqlite'}"
        if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ConfigurationError(
                "JOURNEY_EVENT_STORE must start with sqlite:/// or postgresql:// "
                f"(got {url.split('://')[0]!r}://...)"
            )
        region = (env.get("JOURNEY_DEFAULT_REGION") or "").strip().upper() or None
        if region is not None and not (len(region) == 2 and region.isalpha()):
            raise ConfigurationError(
                f"JOURNEY_DEFAULT_REGION={region!r} is not a two-letter country code such as RU"
            )
        return cls(
            home=home,
            event_store_url=url,
            default_region=region,
            batch_size=_int(env, "JOURNEY_BATCH_SIZE", 5000, 1, 1_000_000),
            max_record_bytes=_int(env, "JOURNEY_MAX_RECORD_BYTES", MAX_RECORD_BYTES, 1024, 16 * 2**20),
            ingest_workers=_int(env, "JOURNEY_INGEST_WORKERS", os.cpu_count() or 1, 0, 256),
            projection_path=Path(env.get("JOURNEY_PROJECTION") or home / "projection.duckdb"),
            analytics_path=Path(env.get("JOURNEY_ANALYTICS") or home / "analytics.duckdb"),
            projection_batch=_int(env, "JOURNEY_PROJECTION_BATCH", 245_760, 1, 10_000_000),
            duckdb_memory=_memory(env.get("JOURNEY_DUCKDB_MEMORY") or "2GB"),
            kafka_bootstrap=env.get("JOURNEY_KAFKA_BOOTSTRAP") or "localhost:9092",
            kafka_configured=bool(env.get("JOURNEY_KAFKA_BOOTSTRAP")),
            kafka_topic=(topic := env.get("JOURNEY_KAFKA_TOPIC") or "touches"),
            kafka_dead_letter_topic=env.get("JOURNEY_KAFKA_DEAD_LETTER_TOPIC") or dead_letter_topic(topic),
            kafka_group=env.get("JOURNEY_KAFKA_GROUP") or "journey-ingest",
            hmac_secret=env.get("JOURNEY_HMAC_SECRET") or None,
            hmac_secret_file=Path(env.get("JOURNEY_HMAC_SECRET_FILE") or home / "hmac.key"),
            key_store_url=_key_store(env.get("JOURNEY_KEY_STORE"), url, home),
            master_key=env.get("JOURNEY_MASTER_KEY") or None,
            master_key_file=Path(env.get("JOURNEY_MASTER_KEY_FILE") or home / "master.key"),
            stage_model_path=_existing(env, "JOURNEY_STAGE_MODEL"),
            segments_path=_existing(env, "JOURNEY_SEGMENTS"),
            worklists_path=_existing(env, "JOURNEY_WORKLISTS"),
            property_policy_path=_existing(env, "JOURNEY_PROPERTY_POLICY"),
        )

    def dead_letter_topic_of(self, topic: str) -> str:
        """The dead-letter topic of ``topic``: the configured one for the configured
        topic, ``<topic>.dead-letter`` for any other."""
        return self.kafka_dead_letter_topic if topic == self.kafka_topic else dead_letter_topic(topic)

    @property
    def is_postgres(self) -> bool:
        return self.event_store_url.startswith("postgres")

    @property
    def sqlite_path(self) -> Path:
        return Path(self.event_store_url.removeprefix("sqlite:///"))
