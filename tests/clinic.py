"""A projected demo clinic for analysis tests: the generator's planted effects
(Irina misses calls, doctors differ in retention) in a real DuckDB projection."""

from __future__ import annotations

from pathlib import Path

import orjson

from journey.demo import generate_clinic
from journey.ingest.pipeline import Ingestor
from journey.ingest.sources import RawRecord
from journey.projections.projector import Projector
from journey.projections.stage_model import StageModel
from journey.store.event_store import EventStore
from journey.store.sqlite import open_sqlite
from tests.projections.helpers import PSEUDONYMS


def demo_store(directory: Path, *, patients: int, seed: int = 7) -> EventStore:
    """The demo clinic ingested into a SQLite event store in ``directory``."""
    store = EventStore(open_sqlite(str(directory / "events.sqlite")))
    records = (RawRecord("demo", str(n), orjson.dumps(touch))
               for n, touch in enumerate(generate_clinic(seed=seed, patients=patients), start=1))
    summary = Ingestor(store, workers=0).ingest(records)
    assert summary.quarantined == 0, summary
    return store


def demo_projection(directory: Path, *, patients: int, seed: int = 7,
                    stage_model: StageModel | None = None) -> Path:
    """The demo clinic projected into ``directory / projection.duckdb`` (closed, ready to open)."""
    store = demo_store(directory, patients=patients, seed=seed)
    path = directory / "projection.duckdb"
    projector = Projector(store, path, PSEUDONYMS, stage_model=stage_model)
    try:
        projector.catch_up()
        projector.derive()
    finally:
        projector.close()
    return path
