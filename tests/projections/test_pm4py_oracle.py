"""PM4Py (a test-only peer) as the oracle: on the real logs in ../shared/data,
journey_edges, journey_nodes and journey_variants equal PM4Py's directly-follows
graph, start and end activities, performance DFG (mean, median) and variants."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pandas as pd
import pytest

from journey.ingest.pipeline import Ingestor
from journey.ingest.sources import EventLogColumns, read_event_log
from journey.store.event_store import EventStore
from journey.store.sqlite import open_sqlite
from tests.projections.helpers import project, rows

pm4py = pytest.importorskip("pm4py")

LOGS = ["helpdesk.csv", "receipt_wabo.csv", "hospital_billing_first10k_cases.csv",
        "eshop_clothing_2008_clicks.csv"]


def reference(path: Path) -> dict[str, object]:
    frame = pd.read_csv(path, keep_default_na=False, dtype=str)  # "NA" is a case id
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    frame = pm4py.format_dataframe(frame, case_id="case_id", activity_key="activity", timestamp_key="timestamp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dfg, starts, ends = pm4py.discover_dfg(frame)
        performance, _, _ = pm4py.discover_performance_dfg(frame)
        variants = pm4py.get_variants(frame)
    return {"dfg": dict(dfg), "starts": dict(starts), "ends": dict(ends), "performance": performance,
            "variants": {k: v if isinstance(v, int) else len(v) for k, v in variants.items()}}


@pytest.mark.parametrize("log", LOGS)
def test_maps_equal_pm4py_on_real_logs(log: str, data_dir: Path, tmp_path: Path) -> None:
    path = data_dir / log
    store = EventStore(open_sqlite(str(tmp_path / "events.sqlite")))
    summary = Ingestor(store).ingest(read_event_log(str(path), EventLogColumns("case_id", "activity", "timestamp")))
    assert summary.accepted == summary.read
    con = project(store, tmp_path / "p.duckdb").con
    expected = reference(path)

    edges = {(s, t): (n, mean, median) for s, t, n, mean, median in
             rows(con, "SELECT source, target, transitions, mean_seconds, median_seconds FROM journey_edges")}
    assert {k: v[0] for k, v in edges.items()} == expected["dfg"]
    for pair, stats in expected["performance"].items():  # type: ignore[attr-defined]
        assert math.isclose(edges[pair][1], stats["mean"], rel_tol=1e-9, abs_tol=1e-6), pair
        assert math.isclose(edges[pair][2], stats["median"], rel_tol=1e-9, abs_tol=1e-6), pair

    nodes = rows(con, "SELECT activity, starts, ends FROM journey_nodes")
    assert {a: s for a, s, _ in nodes if s} == expected["starts"]
    assert {a: e for a, _, e in nodes if e} == expected["ends"]

    variants = {tuple(a): n for a, n in rows(con, "SELECT activities, customers FROM journey_variants")}
    assert variants == expected["variants"]
