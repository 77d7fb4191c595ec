"""Segments on a clinic whose members are known in advance, ingested and projected for real."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from journey.errors import InputError
from journey.base.segments import load_segments
from tests.commands import journey
from tests.touches import PROPERTIES, raw, touch

END = "2025-06-30T12:00:00+03:00"


def _t(type_: str, customer: str, when: str, n: int, **properties: Any) -> bytes:
    return raw(touch(type_, event_id=f"{customer}-{type_}-{n}", occurred_at=when,
                     customer={"customer_id": customer},
                     properties={**PROPERTIES[type_], **properties}))


def _visit(customer: str, when: str, n: int = 0, services: tuple[str, ...] = ("consultation",)) -> bytes:
    return _t("visit", customer, when, n, visit_id=f"v-{customer}-{n}", booking_id=f"b-{customer}-{n}",
              services=list(services))


CLINIC = [
    _visit("imp", "2025-05-01T10:00:00+03:00", services=("implant consultation",)),
    _t("treatment_plan", "imp", "2025-05-01T11:00:00+03:00", 0, plan_id="p-imp", status="proposed",
       services=["implant"]),
    _visit("impok", "2025-05-02T10:00:00+03:00", services=("implant consultation",)),
    _t("treatment_plan", "impok", "2025-05-03T11:00:00+03:00", 0, plan_id="p-ok", status="accepted",
       services=["Implant"]),
    _visit("lapsed", "2024-06-01T10:00:00+03:00"),
    _visit("booked", "2024-06-01T10:00:00+03:00"),
    _t("booking", "booked", "2025-06-01T10:00:00+03:00", 1, booking_id="b-ahead",
       scheduled_at="2025-07-10T10:00:00+03:00"),
    _t("profile", "kid", "2025-02-01T10:00:00+03:00", 0, birth_year=2012),
    _t("profile", "teen", "2025-02-01T10:00:00+03:00", 0, birth_year=2011),
    _visit("preg", "2025-06-01T10:00:00+03:00"),
    _t("profile", "preg", "2025-06-01T10:05:00+03:00", 0, conditions=["pregnant"]),
    _visit("plain", "2025-06-02T10:00:00+03:00"),
    _t("consent", "plain", "2025-06-02T10:10:00+03:00", 0, action="granted", channel="sms", purpose="marketing"),
    _t("review", "plain", END, 0),
]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("segments")
    path = folder / "clinic.jsonl"
    path.write_bytes(b"\n".join(CLINIC) + b"\n")
    ingested = json.loads(journey("ingest", str(path), "--json", home=folder).stdout)
    assert ingested["accepted"] == len(CLINIC), ingested
    assert journey("project", home=folder).returncode == 0
    return folder


def test_the_articles_segments_find_exactly_their_members(home: Path) -> None:
    sizes = json.loads(journey("segments", "--json", home=home).stdout)
    assert sizes["as_of"].startswith("2025-06-30T09:00:00")  # the data's last touch, not today
    by_name = {s["name"]: s["size"] for s in sizes["segments"]}
    assert by_name == {"implants_undecided": 1, "no_visit_6_months": 1, "children_turning_13": 1,
                       "whitening_offer": 5}  # everyone who visited but preg


def test_as_of_an_earlier_moment(home: Path) -> None:
    early = json.loads(journey("segments", "--as-of", "2025-05-01T12:00:00+03:00", "--json", home=home).stdout)
    by_name = {s["name"]: s["size"] for s in early["segments"]}
    # on 1 May: impok had no plan yet (undecided too), kid's profile is known, preg and plain had not visited
    assert by_name["implants_undecided"] == 1 and by_name["children_turning_13"] == 1
    assert by_name["whitening_offer"] == 3  # imp, lapsed, booked


def test_contacts_of_a_segment_respect_consent(home: Path) -> None:
    listed = journey("contacts", "--segment", "whitening_offer", "--channel", "sms", home=home)
    assert listed.returncode == 0, listed.stderr
    assert "exported 0 of 5 customers" in listed.stderr
    assert "left out 4 without marketing consent for sms" in listed.stderr
    assert "left out 1 with no known phone" in listed.stderr  # plain consented, but gave no phone
    saved = home / "members.duckdb"
    assert journey("segments", "--out", str(saved), home=home).returncode == 0
    import duckdb

    con = duckdb.connect(str(saved), read_only=True)
    assert con.execute("SELECT segment, count(*) FROM segment_members GROUP BY 1 ORDER BY 1").fetchall() == [
        ("children_turning_13", 1), ("implants_undecided", 1), ("no_visit_6_months", 1), ("whitening_offer", 5)]
    assert con.execute("SELECT count(*) FROM segments").fetchone() == (4,)
    con.close()
    unknown = journey("contacts", "--segment", "nope", "--channel", "sms", home=home)
    assert unknown.returncode == 2 and "no segment 'nope'" in unknown.stderr


def test_a_bad_segments_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "s.toml"
    bad.write_text('[segments.x]\ndescription = "x"\ninclude = { age = 3 }\n')
    with pytest.raises(InputError, match="segments.x.include.age"):
        load_segments(bad)
    bad.write_text('[segments."DROP TABLE"]\ndescription = "x"\n')
    with pytest.raises(InputError, match="segments"):
        load_segments(bad)


def test_the_members_are_the_planted_customers(home: Path) -> None:
    import duckdb

    from journey.crypto.pseudonym import Pseudonymiser

    pseudonym = Pseudonymiser((home / "hmac.key").read_bytes().strip())
    saved = home / "planted.duckdb"
    assert journey("segments", "--out", str(saved), home=home).returncode == 0
    con = duckdb.connect(str(saved), read_only=True)
    found = {(segment, customer) for segment, customer in con.execute("SELECT * FROM segment_members").fetchall()}
    con.close()
    expected = {("implants_undecided", "imp"), ("no_visit_6_months", "lapsed"), ("children_turning_13", "kid")} | {
        ("whitening_offer", c) for c in ("imp", "impok", "lapsed", "booked", "plain")}
    assert found == {(segment, pseudonym.key("customer_id", c)) for segment, c in expected}
