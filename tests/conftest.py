"""Shared fixtures: real event stores (SQLite files, a PostgreSQL schema per test)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from journey.crypto.keys import InMemoryKeyStore, KeyStore, PostgresKeyStore, SQLiteKeyStore
from journey.store.event_store import EventStore
from journey.store.postgres import open_postgres
from journey.store.recorder import InMemoryJourneyRecorder, JourneyRecorder
from journey.store.sqlite import open_sqlite
from tests.stores import WRAP, sealed

POSTGRES = os.environ.get("JOURNEY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema in the test PostgreSQL database, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    base = POSTGRES.split("?")[0]
    try:
        with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL is not reachable at {base} ({error}); start it "
                    "(see .ci/run) or set JOURNEY_TEST_POSTGRES")
    yield f"{base}?schema={schema}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def make_keys(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> KeyStore:
    if kind == "memory":
        return InMemoryKeyStore(WRAP)
    if kind == "sqlite":
        keys: KeyStore = SQLiteKeyStore(str(tmp_path / "keys.sqlite"), WRAP)
    else:
        url = request.getfixturevalue("pg_url")
        keys = PostgresKeyStore(url.split("?")[0], url.split("schema=")[1], WRAP)
    request.addfinalizer(keys.close)
    return keys


def make_recorder(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> JourneyRecorder:
    if kind == "memory":
        return InMemoryJourneyRecorder()
    if kind == "sqlite":
        return open_sqlite(str(tmp_path / "events.sqlite"))
    url = request.getfixturevalue("pg_url")
    recorder = open_postgres(url)
    request.addfinalizer(recorder.datastore.close)
    return recorder


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> EventStore:
    """The event store on each adapter, sealing personal fields with a key store of
    the same kind: the same behaviour is expected of all."""
    return sealed(make_recorder(request.param, tmp_path, request), make_keys(request.param, tmp_path, request))


@pytest.fixture
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.fail(f"the real event logs are expected in {DATA} (../shared/data beside the repo)")
    return DATA
