"""Measured outreach on a clinic with a planted recall uplift: the holdout is the rule's,
the responses are planted per group, and the figures must come out exactly."""

from __future__ import annotations

import hashlib
import json
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from journey.base.outreach import Group, newcombe_interval, wilson_interval
from journey.crypto.pseudonym import Pseudonymiser
from tests.commands import journey
from tests.touches import PROPERTIES, raw, touch

SECRET = "outreach-test-secret-0123456789"
VISIT = datetime.fromisoformat("2024-01-10T10:00:00+03:00")
DUE = VISIT + timedelta(days=180)


def _held_out(customer: str) -> bool:
    pseudonym = Pseudonymiser(SECRET.encode()).key("customer_id", customer)
    return int(hashlib.md5(f"recall:{pseudonym}".encode()).hexdigest()[:8], 16) % 10000 < 1000


def _touch(type_: str, customer: str, when: datetime, n: int, **properties: object) -> bytes:
    return raw(touch(type_, event_id=f"{customer}-{n}", occurred_at=when.isoformat(),
                     customer={"customer_id": customer}, properties={**PROPERTIES[type_], **properties}))


def _clinic() -> tuple[list[bytes], dict[str, tuple[int, int]]]:
    rng = random.Random(7)
    lines, planted = [], {"contacted": [0, 0], "held out": [0, 0]}
    for i in range(600):
        customer = f"R{i:04d}"
        lines.append(_touch("visit", customer, VISIT, 0, visit_id=f"v-{customer}", booking_id=f"b-{customer}",
                            first_visit=False))
        group = "held out" if _held_out(customer) else "contacted"
        if group == "contacted":
            lines.append(_touch("message", customer, DUE + timedelta(days=2), 1, purpose="recall", booking_id=None))
        responds = rng.random() < (0.30 if group == "contacted" else 0.10)
        if responds:
            lines.append(_touch("visit", customer, DUE + timedelta(days=10), 2, visit_id=f"v2-{customer}",
                                booking_id=f"b2-{customer}", first_visit=False))
        planted[group][0] += 1
        planted[group][1] += responds
    lines.append(_touch("review", "R0000", datetime.fromisoformat("2024-12-31T12:00:00+03:00"), 9))
    return lines, {k: (n, r) for k, (n, r) in planted.items()}


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, tuple[int, int]]]:
    home = tmp_path_factory.mktemp("outreach")
    lines, planted = _clinic()
    (home / "clinic.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    assert journey("ingest", str(home / "clinic.jsonl"), home=home, JOURNEY_HMAC_SECRET=SECRET).returncode == 0
    assert journey("project", home=home, JOURNEY_HMAC_SECRET=SECRET).returncode == 0
    return home, planted


def test_the_planted_uplift_is_measured_exactly(clinic: tuple[Path, dict[str, tuple[int, int]]]) -> None:
    home, planted = clinic
    result = journey("outreach", "--purpose", "recall", "--within", "30d", "--json", home=home)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    contacted, held = planted["contacted"], planted["held out"]
    assert 40 <= held[0] <= 80  # about 10% of 600 held out by the rule's hash
    assert (answer["contacted"]["customers"], answer["contacted"]["responded"]) == contacted
    assert (answer["held_out"]["customers"], answer["held_out"]["responded"]) == held
    assert answer["not_contacted"]["customers"] == 0 and answer["held_out_contacted"] == 0
    assert answer["uplift"] == pytest.approx(contacted[1] / contacted[0] - held[1] / held[0])
    low, high = answer["interval_95"]
    assert 0 < low < answer["uplift"] < high  # a planted uplift of 20 points is not chance here


def test_the_worklist_hides_the_holdout_and_tracks_done(clinic: tuple[Path, dict[str, tuple[int, int]]]) -> None:
    home, planted = clinic
    # on the due day nobody has been contacted yet: every task is due, or held out
    before = json.loads(journey("tasks", "--rule", "recall", "--as-of", (DUE + timedelta(hours=1)).isoformat(),
                                "--json", home=home).stdout)
    statuses = [t["status"] for t in before["tasks"]]
    assert statuses.count("held_out") == planted["held out"][0]
    assert statuses.count("due") == planted["contacted"][0]
    after = json.loads(journey("tasks", "--summary", "--json", home=home).stdout)
    recall = next(r for r in after["rates"] if r["rule"] == "recall")
    assert (recall["tasks"], recall["done"], recall["done_rate"]) == (planted["contacted"][0],
                                                                      planted["contacted"][0], 1.0)


def test_the_clinic_side_holdout_is_the_worklist_s() -> None:
    from journey.base.worklists import recall_holdout

    decide = recall_holdout(Pseudonymiser(SECRET.encode()))
    assert [decide(f"R{i:04d}") for i in range(600)] == [_held_out(f"R{i:04d}") for i in range(600)]
    assert not decide("")


def test_intervals_equal_newcombe_1998() -> None:
    """Newcombe (1998), Stat. Med. 17: 81/263 gives 0.2553-0.3662 (Wilson); 56/70 - 48/80
    gives 0.0524-0.3339 (method 10)."""
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=5e-5)
    assert newcombe_interval(Group(70, 56), Group(80, 48)) == pytest.approx((0.0524, 0.3339), abs=5e-5)
