"""The clinic metrics a derive writes (summed from the touch-level parts it keeps per
customer) equal ``CLINIC_METRICS_SQL`` over every touch, after a full derive and after
incremental ones that bring late touches of every kind the metrics count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from journey.projections.metrics import CLINIC_METRICS_SQL, PARTS
from tests.clinic import demo_store
from tests.projections.helpers import PSEUDONYMS, append, every_table, project
from tests.touches import touch

from journey.projections.projector import Projector


def _comparable(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted((tuple(float(f"{v:.9g}") if isinstance(v, float) else v for v in row) for row in rows), key=repr)


def metrics_match_the_query(con: duckdb.DuckDBPyConnection) -> None:
    kept = _comparable(con.execute("SELECT * FROM clinic_metrics").fetchall())
    assert kept == _comparable(con.execute(CLINIC_METRICS_SQL).fetchall())


def _late(patients: list[str], visitor: str) -> list[dict[str, Any]]:
    """Late touches of every kind the metrics count, for existing patients and nobody."""
    out: list[dict[str, Any]] = []
    for n, patient in enumerate(patients):
        who = {"customer_id": patient}
        out += [
            touch("review", f"late-review-{n}", customer=who, properties={
                "platform": "maps", "rating": 1 + n % 5, "answered": n % 2 == 0, "doctor": "Dr. Late",
                "explained_problem": n % 3 == 0, "price_justified": n % 2 == 1}),
            touch("treatment_plan", f"late-plan-{n}", customer=who, properties={
                "plan_id": f"lp-{n}", "status": ("accepted", "declined", "proposed")[n % 3], "doctor": "Dr. Late"}),
            touch("call", f"late-call-{n}", customer=who, properties={
                "direction": "inbound", "answered": n % 2 == 0, "administrator": "Late admin"}),
            touch("no_show", f"late-no-show-{n}", customer=who,
                  properties={"booking_id": f"lb-{n}", "doctor": "Dr. Late"}),
            touch("payment", f"late-payment-{n}", customer=who, occurred_at="2020-01-01T10:00:00+03:00"),
            touch("booking", f"late-booking-{n}", customer=who),
        ]
    out.append(touch("ad_spend", "late-spend", channel="late_channel"))
    out.append({"event_id": "late-merge", "type": "identity_link", "occurred_at": "2020-01-01T10:00:00+03:00",
                "customer": {"customer_id": patients[0], "anonymous_id": visitor}})
    return out


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    directory = tmp_path_factory.mktemp("metrics")
    store = demo_store(directory, patients=400)
    return store, directory


def test_metrics_from_kept_parts_equal_the_query_over_every_touch(clinic: tuple[Any, Path]) -> None:
    store, directory = clinic
    projector = project(store, directory / "incremental.duckdb")
    metrics_match_the_query(projector.con)
    customers = [e.touch["customer"] for _, e in store.read() if "customer" in e.touch]
    patients = sorted({c["customer_id"] for c in customers if c.get("customer_id")})[:6]
    visitor = next(c["anonymous_id"] for c in customers if c.get("anonymous_id") and not c.get("customer_id"))
    late = _late(patients, visitor)
    for batch in (late[:7], late[7:20], late[20:]):
        append(store, *batch)
        projector.catch_up()
        projector.derive()
        assert projector.last_derive is not None and projector.last_derive.since is not None  # incremental
        metrics_match_the_query(projector.con)
    assert projector.con.execute(f"SELECT count(*) FROM {PARTS} WHERE value = 'Dr. Late'").fetchone()[0] > 0
    rebuilt = project(store, directory / "rebuilt.duckdb")
    assert every_table(projector.con) == every_table(rebuilt.con)
    kept = f"SELECT * FROM {PARTS} ORDER BY ALL"
    assert projector.con.execute(kept).fetchall() == rebuilt.con.execute(kept).fetchall()
    projector.close()
    rebuilt.close()


def test_a_projection_without_the_kept_parts_derives_in_full(tmp_path: Path) -> None:
    store = demo_store(tmp_path, patients=30)
    path = tmp_path / "projection.duckdb"
    project(store, path).close()
    con = duckdb.connect(str(path))
    con.execute(f"DROP TABLE {PARTS}")
    con.close()
    append(store, touch("call", "late-call", customer={"customer_id": "P-late"}))
    projector = Projector(store, path, PSEUDONYMS)
    projector.catch_up()
    projector.derive()
    assert projector.last_derive is not None and projector.last_derive.since is None
    metrics_match_the_query(projector.con)
    projector.close()
