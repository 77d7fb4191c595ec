"""Points of failure find the culprits planted in a clinic, each at its own stage with
significance, and blame nobody who behaves like the rest of the clinic."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pytest

from journey.store.event_store import EventStore
from journey.store.sqlite import open_sqlite
from tests.projections.helpers import append, project
from tests.touches import touch

START = datetime(2025, 1, 1, 9, 0, tzinfo=timezone(timedelta(hours=3)))
ADMINISTRATORS = ("Anna", "Olga", "Irina", "Maria", "Elena")
BRANCHES = ("Tverskaya", "Arbat", "Maryino")
DOCTORS = ("Dr. Petrov", "Dr. Ivanova", "Dr. Smirnov", "Dr. Volkov")
MISSES = {"Irina": 0.45}  # the administrator who misses calls (the others: 5%)
NO_SHOWS = {"Maryino": 0.40}  # the branch whose patients do not come (the others: 8%)
ACCEPTS = {"Dr. Volkov": 0.20}  # the doctor whose plans are declined (the others: 70%)


class _Clinic:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.touches: list[dict[str, Any]] = []

    def add(self, type_: str, patient: int, at: datetime, **properties: Any) -> None:
        record = touch(type_, event_id=f"e-{len(self.touches)}", occurred_at=at.isoformat(),
                       customer={"customer_id": f"P-{patient}", "phone": f"+7916{patient:07d}"})
        record["properties"] = properties
        self.touches.append(record)

    def patient(self, n: int) -> None:
        rng = self.rng
        at = START + timedelta(days=rng.randrange(200), hours=rng.randrange(8))
        self.add("ad_click", n, at, campaign="spring")
        at += timedelta(hours=1)
        for attempt in range(2):
            admin = rng.choice(ADMINISTRATORS)
            answered = rng.random() >= MISSES.get(admin, 0.05)
            self.add("call", n, at, direction="inbound", answered=answered, administrator=admin,
                     duration_seconds=120 if answered else 0)
            if answered:
                break
            if attempt or rng.random() < 0.7:
                return  # a missed caller mostly goes to another clinic
            at += timedelta(days=5)  # calls again after the contact stage's 3 days
        if rng.random() >= 0.75:
            return  # asked about prices and did not book
        branch, doctor, admin = rng.choice(BRANCHES), rng.choice(DOCTORS), rng.choice(ADMINISTRATORS)
        booking = f"b-{n}"
        at += timedelta(minutes=5)
        when = at + timedelta(days=rng.randint(1, 10))
        self.add("booking", n, at, booking_id=booking, scheduled_at=when.isoformat(), service="consultation",
                 doctor=doctor, branch=branch, administrator=admin, booked_via="phone", first_visit=True)
        if rng.random() < NO_SHOWS.get(branch, 0.08):
            self.add("no_show", n, when, booking_id=booking, doctor=doctor, branch=branch)
            return
        self.add("visit", n, when, visit_id=f"v-{n}", booking_id=booking, doctor=doctor, branch=branch,
                 services=["consultation"], first_visit=True)
        plan = {"plan_id": f"p-{n}", "doctor": doctor, "stages": 2}
        decided = when + timedelta(minutes=30)
        self.add("treatment_plan", n, decided - timedelta(minutes=10), status="proposed", **plan)
        accepted = rng.random() < ACCEPTS.get(doctor, 0.70)
        self.add("treatment_plan", n, decided, status="accepted" if accepted else "declined", **plan)
        if accepted:
            self.add("visit", n, when + timedelta(days=14), visit_id=f"v2-{n}", doctor=doctor, branch=branch,
                     services=["filling"])


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    folder = tmp_path_factory.mktemp("culprits")
    planted = _Clinic(seed=12)
    for n in range(1, 2201):
        planted.patient(n)
    planted.add("ad_click", 0, START + timedelta(days=364), campaign="spring")  # the data runs a year
    store = EventStore(open_sqlite(str(folder / "events.sqlite")))
    for i in range(0, len(planted.touches), 1000):
        append(store, *planted.touches[i:i + 1000])
    projector = project(store, folder / "projection.duckdb")
    projector.close()
    return duckdb.connect(str(folder / "projection.duckdb"), read_only=True)


def test_each_planted_culprit_is_found_at_its_stage(clinic: duckdb.DuckDBPyConnection) -> None:
    found = clinic.execute("SELECT stage, dimension, value, lift, q_value FROM failure_points "
                           "WHERE significant ORDER BY stage, dimension, value").fetchall()
    assert {(s, d, v) for s, d, v, _, _ in found} == {
        ("contact", "administrator", "Irina"),
        ("booking", "branch", "Maryino"),
        ("first_visit", "doctor", "Dr. Volkov"),
    }  # and nobody else: the administrators at booking, the other branches and doctors behave alike
    assert all(lift > 1.3 and q < 0.001 for _, _, _, lift, q in found)


def test_owners_are_judged_only_at_their_own_steps(clinic: duckdb.DuckDBPyConnection) -> None:
    judged = set(clinic.execute("SELECT stage, dimension FROM failure_points").fetchall())
    assert judged <= {("contact", "administrator"), ("booking", "branch"), ("booking", "administrator"),
                      ("first_visit", "doctor"), ("treatment", "doctor")}
    assert ("awareness", "channel") not in judged  # channel mix is acquisition, not a failure


def test_values_better_than_the_rest_are_never_blamed(clinic: duckdb.DuckDBPyConnection) -> None:
    rows = clinic.execute("SELECT value, lift, significant, better FROM failure_points "
                          "WHERE stage = 'first_visit' AND dimension = 'doctor'").fetchall()
    for value, lift, significant, better in rows:
        assert not (significant and better)
        if lift < 1:
            assert not significant, value
    assert any(better for *_, better in rows)  # the doctors whose patients accept plans stand apart


def test_every_test_is_corrected_together(clinic: duckdb.DuckDBPyConnection) -> None:
    tested = clinic.execute("SELECT p_value, q_value FROM (SELECT p_value, q_value FROM failure_points "
                            "UNION ALL SELECT p_value, q_value FROM stage_changes) WHERE p_value IS NOT NULL "
                            "ORDER BY p_value").fetchall()  # one correction: points and changes together
    m = len(tested)
    assert m >= 10
    smallest_p, smallest_q = tested[0]
    assert smallest_q >= smallest_p and smallest_q <= smallest_p * m
    assert clinic.execute("SELECT count(*) FROM failure_points WHERE p_value IS NULL AND "
                          "(significant OR better)").fetchone()[0] == 0
