"""Building stores and projections for projection tests."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from journey.domain.touch import parse_touch
from journey.projections.projector import Projector
from journey.store.event_store import EventStore, Submission
from tests.touches import raw

from tests.stores import PSEUDONYMS

__all__ = ["PSEUDONYMS", "analyst_view", "append", "every_table", "project", "rows"]


def append(store: EventStore, *records: dict[str, Any], recorded_at: datetime | None = None) -> None:
    outcome = store.append([Submission.of(parse_touch(raw(r))) for r in records], recorded_at=recorded_at)
    assert outcome.accepted == len(records), outcome


def project(store: EventStore, path: Path, **options: Any) -> Projector:
    projector = Projector(store, path, PSEUDONYMS, **options)
    projector.catch_up()
    projector.derive()
    return projector


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return con.execute(sql).fetchall()


ANALYST_QUERIES = {
    "touchpoints": "SELECT event_id, customer_id, activity, stage, seq FROM touchpoints ORDER BY event_id",
    "customers": "SELECT customer_id, touches, visits, revenue, first_channel, current_stage FROM customers ORDER BY 1",
    "edges": "SELECT source, target, transitions, customers, mean_seconds, median_seconds FROM journey_edges ORDER BY 1, 2",
    "nodes": "SELECT * FROM journey_nodes ORDER BY activity",
    "variants": "SELECT variant, customers FROM journey_variants ORDER BY variant",
    "stages": "SELECT * FROM stage_transitions ORDER BY 1, 2",
}


def analyst_view(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    return {name: rows(con, sql) for name, sql in ANALYST_QUERIES.items()}


def _comparable(value: Any) -> Any:
    """Floats to 9 significant digits: a mean summed in another row order may differ in
    its last bits; everything else as it is."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, list):
        return tuple(_comparable(v) for v in value)
    return value


def every_table(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    """Every analyst table's rows, in a canonical order (an incremental derive may store
    rows in another physical order than a rebuild): what "equal to a rebuild" compares.
    ``projection_status`` aside (it holds the time it was written)."""
    from journey.projections.schema import ANALYST_TABLES

    tables = {}
    for table in ANALYST_TABLES:
        if table == "projection_status":
            continue
        found = [tuple(_comparable(v) for v in row) for row in con.execute(f"SELECT * FROM {table}").fetchall()]
        tables[table] = sorted(found, key=repr)
    return tables
