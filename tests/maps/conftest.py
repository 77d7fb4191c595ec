"""Projections the map tests read: a simulated clinic and real event logs, each built
once through the real path (event store -> projector -> published snapshot)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import orjson
import pytest

from journey.demo import generate_clinic
from journey.ingest.pipeline import Ingestor
from journey.ingest.sources import EventLogColumns, RawRecord, read_event_log
from journey.projections.publish import publish
from journey.store.event_store import EventStore
from journey.store.sqlite import open_sqlite
from tests.projections.helpers import project

CLINIC_PATIENTS = 600


def _published(store: EventStore, folder: Path) -> Path:
    projector = project(store, folder / "projection.duckdb")
    snapshot = folder / "analytics.duckdb"
    publish(projector.con, snapshot)
    projector.con.close()
    return snapshot


@pytest.fixture(scope="session")
def clinic_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo clinic (seed 7) projected and published, as `journey demo` does."""
    folder = tmp_path_factory.mktemp("clinic")
    store = EventStore(open_sqlite(str(folder / "events.sqlite")))
    records = (RawRecord("demo", str(i), orjson.dumps(r))
               for i, r in enumerate(generate_clinic(seed=7, patients=CLINIC_PATIENTS)))
    summary = Ingestor(store).ingest(records)
    assert summary.accepted == summary.read
    return _published(store, folder)


@pytest.fixture
def clinic(clinic_snapshot: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(clinic_snapshot), read_only=True)
    yield con
    con.close()


def log_snapshot(path: Path, folder: Path) -> Path:
    """A real CSV event log imported like `journey import-log` and published."""
    store = EventStore(open_sqlite(str(folder / "events.sqlite")))
    summary = Ingestor(store).ingest(read_event_log(str(path), EventLogColumns("case_id", "activity", "timestamp")))
    assert summary.accepted == summary.read
    return _published(store, folder)

