"""What changed: loss rates by the month patients entered a stage, decided months only."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from journey.store.event_store import EventStore
from tests.conftest import make_keys, make_recorder
from tests.projections.helpers import append, project, rows
from tests.stores import sealed
from tests.touches import touch


def _month(store: EventStore, month: int, patients: int, lost: int, first: int, shared: bool = False) -> None:
    """Calls on the 5th; the first ``lost`` callers never book. ``shared``: Irina takes the
    first half of the calls (all of the lost), Anna the rest."""
    records = []
    for n in range(first, first + patients):
        who = {"customer_id": f"P-{n}"}
        call = touch("call", f"c-{n}", occurred_at=f"2025-{month:02d}-05T10:00:00+00:00", customer=who)
        call["properties"]["administrator"] = "Anna" if shared and n - first >= patients // 2 else "Irina"
        records.append(call)
        if n - first >= lost:  # moved on: booked the next day
            records.append(touch("booking", f"b-{n}", occurred_at=f"2025-{month:02d}-06T10:00:00+00:00",
                                 customer=who))
    append(store, *records)


def _projected(store: EventStore, tmp_path: Path) -> duckdb.DuckDBPyConnection:
    """One caller on 10 March closes the data: March is still deciding, never compared."""
    append(store, touch("call", "c-late", occurred_at="2025-03-10T10:00:00+00:00", customer={"customer_id": "P-late"}))
    return project(store, tmp_path / "p.duckdb").con


def _store(tmp_path: Path, request: pytest.FixtureRequest) -> EventStore:
    return sealed(make_recorder("memory", tmp_path, request), make_keys("memory", tmp_path, request))


def test_the_latest_decided_month_is_compared_with_the_month_before(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    store = _store(tmp_path, request)
    _month(store, 1, 40, 10, 0)
    _month(store, 2, 40, 28, 100)
    con = _projected(store, tmp_path)

    assert rows(con, "SELECT strftime(month, '%Y-%m'), entered, lost, moved_on, in_progress, decided "
                     "FROM stage_months WHERE stage = 'contact' ORDER BY month") == [
        ("2025-01", 40, 10, 30, 0, True), ("2025-02", 40, 28, 12, 0, True), ("2025-03", 1, 0, 0, 1, False)]
    change = rows(con, "SELECT strftime(month, '%Y-%m'), entered, lost, strftime(previous_month, '%Y-%m'), "
                       "previous_entered, previous_lost, round(change_points, 6), significant, worse, owners "
                       "FROM stage_changes WHERE stage = 'contact'")
    assert change == [("2025-02", 40, 28, "2025-01", 40, 10, 45.0, True, True, ["administrator"])]
    # booking -> first visit: January's bookings are decided (30 days), February's are not: nothing to compare
    assert rows(con, "SELECT count(*) FROM stage_changes WHERE stage = 'booking'") == [(0,)]
    assert rows(con, "SELECT decided FROM stage_months WHERE stage = 'booking' ORDER BY month") == [(True,), (False,)]
    # awareness (14 days): February ends 18 days before the end of the data, yet its last days are deciding
    assert rows(con, "SELECT strftime(month, '%Y-%m') FROM stage_months WHERE stage = 'awareness' AND decided") == [
        ("2025-01",)]


def test_one_correction_covers_the_changes_and_the_points_of_failure(tmp_path: Path,
                                                                    request: pytest.FixtureRequest) -> None:
    from journey.projections.stats import benjamini_hochberg

    store = _store(tmp_path, request)
    _month(store, 1, 40, 10, 0, shared=True)
    _month(store, 2, 40, 14, 100, shared=True)
    con = _projected(store, tmp_path)
    points = rows(con, "SELECT p_value, q_value FROM failure_points ORDER BY stage, dimension, value")
    changes = rows(con, "SELECT p_value, q_value, significant FROM stage_changes ORDER BY stage")
    tested = [p for p, _ in points if p is not None]
    assert len(tested) == 2 and len(changes) == 1 and changes[0][0] is not None  # Irina, Anna; contact's change
    together = benjamini_hochberg([p for p, _ in points] + [p for p, _, _ in changes])
    assert [q for _, q in points] + [q for _, q, _ in changes] == together
    apart = benjamini_hochberg(tested)  # what the points' q-values would be if corrected on their own
    assert all(q > a for (_, q), a in zip([r for r in points if r[0] is not None], apart, strict=True))
    assert not any(significant for _, _, significant in changes)  # 25% -> 35% of 40 could be chance
