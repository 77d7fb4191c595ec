"""Worklists on a clinic whose due dates and statuses are known in advance."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from journey.base.worklists import load_worklists
from journey.errors import InputError
from tests.base.test_outreach import _touch
from tests.commands import journey

T = datetime.fromisoformat("2025-06-02T10:00:00+03:00")
CLINIC = [
    _touch("visit", "care", T, 0, visit_id="v-care", booking_id="b-care", services=["Implant placement"],
           doctor="Dr. Volkov", first_visit=True),
    _touch("call", "care", T + timedelta(hours=3), 1, direction="outbound", answered=True, outcome="info"),
    _touch("message", "care", T + timedelta(hours=20), 2, purpose="thank_you", booking_id=None),
    _touch("visit", "care2", T, 0, visit_id="v-care2", booking_id="b-care2", services=["surgery"],
           doctor="Dr. Volkov", first_visit=False),
    _touch("booking", "rem", T, 0, booking_id="b-rem", scheduled_at=(T + timedelta(days=5)).isoformat(),
           administrator="Irina", first_visit=False),
    _touch("profile", "kid", T - timedelta(days=100), 0, birth_year=2012),
    _touch("profile", "adult", T - timedelta(days=100), 0, birth_year=1980),
]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tasks")
    (folder / "clinic.jsonl").write_bytes(b"\n".join(CLINIC) + b"\n")
    assert journey("ingest", str(folder / "clinic.jsonl"), home=folder).returncode == 0
    assert journey("project", home=folder).returncode == 0
    return folder


def _tasks(home: Path, when: datetime, *extra: str) -> list[dict[str, str]]:
    result = journey("tasks", "--as-of", when.isoformat(), "--json", *extra, home=home)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["tasks"]


def test_each_rule_at_two_moments(home: Path) -> None:
    early = {(t["rule"], t["owner"]): t["status"] for t in _tasks(home, T + timedelta(hours=2))}
    assert early[("care_call", "Dr. Volkov")] == "due"             # both care calls still open after 2 h
    assert early[("reminder", "Irina")] == "due"                    # deadline: a day before the booking
    assert ("thank_you", "administrators") in early
    assert early[("orthodontic_invitation", "reception")] in ("overdue", "held_out")  # opened 1 Jan, 90 days
    assert not any(rule == "recall" for rule, _ in early)           # six months are not over yet
    late = _tasks(home, T + timedelta(days=2))
    care = sorted(t["status"] for t in late if t["rule"] == "care_call")
    assert care == ["done", "overdue"]                              # the call after 3 h; none for care2
    thanks = [t for t in late if t["rule"] == "thank_you"]
    assert [t["status"] for t in thanks] == ["done"]                # only care's visit was a first visit
    assert [t["status"] for t in late if t["rule"] == "reminder"] == ["due"]
    after_deadline = _tasks(home, T + timedelta(days=4, hours=1), "--rule", "reminder")
    assert [t["status"] for t in after_deadline] == ["overdue"]
    invited = [t for t in late if t["rule"] == "orthodontic_invitation"]
    assert len(invited) == 1 and invited[0]["due_at"].startswith("2025-01-01")  # the kid only, not the adult


def test_owner_filter_and_a_bad_file(home: Path, tmp_path: Path) -> None:
    mine = _tasks(home, T + timedelta(days=2), "--owner", "Dr. Volkov")
    assert {t["rule"] for t in mine} == {"care_call"}
    bad = tmp_path / "w.toml"
    bad.write_text('[rules.x]\ndescription = "x"\nowner = "doctor"\ndone = { types = ["call"] }\n')
    with pytest.raises(InputError, match="either trigger or turns_age"):
        load_worklists(bad)
    bad.write_text('[rules.x]\ndescription = "x"\nowner = "doctor"\ntrigger = { types = ["visit"] }\n'
                   'window = "soon"\ndone = { types = ["call"] }\n')
    with pytest.raises(InputError, match="duration"):
        load_worklists(bad)


def test_as_of_now_is_the_wall_clock_only_when_asked(home: Path) -> None:
    default = json.loads(journey("tasks", "--json", home=home).stdout)["now"]
    live = json.loads(journey("tasks", "--as-of", "now", "--json", home=home).stdout)["now"]
    assert default.startswith("2025-06-03T03:00")  # the latest touch in the data: the thank-you
    assert live[:4] >= "2026"
