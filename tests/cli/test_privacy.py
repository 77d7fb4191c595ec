"""``journey forget`` and ``journey contacts`` as a user runs them, on real files."""

from __future__ import annotations

import csv
import io
import json
import stat
from pathlib import Path

import duckdb

from tests.commands import journey
from tests.touches import raw, touch

ANNA = {"customer_id": "CRM-ANNA-77", "phone": "+79161234567"}
BORIS = {"customer_id": "CRM-BORIS-88", "phone": "+79169998877"}
WHEN = "2025-03-0{}T10:00:00+03:00"


def clinic(home: Path) -> None:
    records = [
        touch("consent", "c1", occurred_at=WHEN.format(1), customer=ANNA,
              properties={"action": "granted", "channel": "sms", "purpose": "marketing"}),
        touch("booking", "b1", occurred_at=WHEN.format(2), customer=ANNA),
        touch("visit", "v1", occurred_at=WHEN.format(3), customer={"customer_id": "CRM-ANNA-77"}),
        touch("review", "r1", occurred_at=WHEN.format(4), customer={"customer_id": "CRM-ANNA-77"},
              properties={"platform": "maps", "rating": 2, "text": "Rude administrator"}),
        touch("booking", "b2", occurred_at=WHEN.format(2), customer=BORIS),
        touch("visit", "v2", occurred_at=WHEN.format(3), customer={"customer_id": "CRM-BORIS-88"}),
    ]
    path = home / "in.jsonl"
    path.write_bytes(b"\n".join(raw(r) for r in records) + b"\n")
    assert journey("ingest", str(path), home=home).returncode == 0
    assert journey("project", home=home).returncode == 0


def customers(home: Path) -> list[str]:
    result = journey("sql", "SELECT customer_id FROM customers ORDER BY 1", "--format", "csv", home=home)
    return [row[0] for row in csv.reader(io.StringIO(result.stdout))][1:]


def test_contacts_leave_out_customers_without_consent_and_say_so(tmp_path: Path) -> None:
    clinic(tmp_path)
    ids = "\n".join(customers(tmp_path)) + "\n"
    out = tmp_path / "list.csv"
    result = journey("contacts", "-", "--channel", "sms", "--out", str(out), home=tmp_path, stdin=ids.encode())
    assert result.returncode == 0, result.stderr
    assert list(csv.reader(out.open()))[1:] == [[_pseudonym(tmp_path, "CRM-ANNA-77"), "CRM-ANNA-77", "+79161234567"]]
    assert "left out 1 without marketing consent for sms" in result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    both = journey("contacts", "-", "--channel", "sms", "--include-without-consent", home=tmp_path, stdin=ids.encode())
    assert "+79169998877" in both.stdout and "included 1 WITHOUT marketing consent" in both.stderr
    reminders = journey("contacts", "-", "--channel", "sms", "--purpose", "reminders", home=tmp_path, stdin=ids.encode())
    assert len(reminders.stdout.splitlines()) == 3  # nobody refused reminders


def test_forget_then_project_leaves_nothing_readable(tmp_path: Path) -> None:
    clinic(tmp_path)
    anna = _pseudonym(tmp_path, "CRM-ANNA-77")
    result = journey("forget", anna, "--yes", "--json", home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["identifiers"] == {"customer_id": 1, "phone": 1}
    assert journey("project", home=tmp_path).returncode == 0
    assert anna not in customers(tmp_path)
    data = b"".join((tmp_path / name).read_bytes()
                    for name in ("events.sqlite", "keys.sqlite", "analytics.duckdb", "projection.duckdb"))
    for secret in (b"CRM-ANNA-77", b"79161234567", b"Rude administrator"):
        assert secret not in data, secret
    report = tmp_path / "report.html"
    assert journey("report", "--out", str(report), home=tmp_path).returncode == 0
    page = report.read_bytes()
    for secret in (b"CRM-ANNA-77", b"79161234567", b"Rude administrator", anna.encode()):
        assert secret not in page, secret
    again = journey("forget", "CRM-ANNA-77", "--yes", home=tmp_path)
    assert again.returncode == 2 and "forgotten already" in again.stderr
    listed = journey("contacts", "-", "--channel", "sms", "--include-without-consent", home=tmp_path,
                     stdin=(anna + "\n").encode())
    assert "+79161234567" not in listed.stdout and "left out 1 with no known phone" in listed.stderr


def test_forget_asks_before_it_destroys(tmp_path: Path) -> None:
    clinic(tmp_path)
    result = journey("forget", "CRM-BORIS-88", home=tmp_path, stdin=b"n\n")
    assert result.returncode == 1 and "Aborted" in result.stderr
    assert len(customers(tmp_path)) == 2


def _pseudonym(home: Path, clinic_id: str) -> str:
    from journey.crypto.pseudonym import Pseudonymiser

    return Pseudonymiser((home / "hmac.key").read_bytes().strip()).key("customer_id", clinic_id)


def test_the_key_store_and_master_key_are_private_files(tmp_path: Path) -> None:
    clinic(tmp_path)
    for name in ("keys.sqlite", "master.key", "hmac.key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    master = (tmp_path / "master.key").read_bytes().strip()
    con = duckdb.connect(str(tmp_path / "analytics.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM customers").fetchone() == (2,)
    con.close()
    for name in ("events.sqlite", "keys.sqlite", "analytics.duckdb"):
        assert master not in (tmp_path / name).read_bytes()


OLGA = {"customer_id": "pat-991", "phone": "+7 916 555-12-34", "email": "olga.s@example.ru"}
OLGA_SECRETS = (b"pat-991", b"79165551234", b"555-12-34", b"olga.s@example.ru", b"Smirnova Olga",
                b"implants", b"Olga Smirnova", b"fear of needles", b"Kind doctor")


def olga_clinic(home: Path, **env: str) -> None:
    """The issue's custom touch, built-in touches with free text, and padding enough
    for several batches (so the worker processes seal, not the writer)."""
    records = [
        {"event_id": "pv-1", "type": "custom", "activity": "called", "occurred_at": "2025-05-01T10:00:00Z",
         "customer": {"customer_id": "pat-991", "phone": "+7 916 555-12-34"},
         "properties": {"note": "Smirnova Olga asked about implants", "branch": "north",
                        "extra": {"said": "fear of needles"}}},
        touch("profile", "pr-1", occurred_at="2025-05-01T11:00:00Z", customer=OLGA,
              properties={"name": "Olga Smirnova", "notes": "fear of needles"}),
        touch("review", "rv-1", occurred_at="2025-05-02T11:00:00Z", customer={"customer_id": "pat-991"},
              properties={"platform": "maps", "rating": 5, "text": "Kind doctor"}),
        *(touch("booking", f"pad-{n}", occurred_at="2025-05-03T10:00:00Z",
                customer={"customer_id": f"pad-{n}", "phone": f"+7916{n:07d}"}) for n in range(40)),
    ]
    path = home / "in.jsonl"
    path.write_bytes(b"\n".join(r if isinstance(r, bytes) else raw(r) for r in records) + b"\n")
    result = journey("ingest", str(path), "--json", home=home, **env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["accepted"] == 43
    assert journey("project", home=home).returncode == 0


def _scan(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file() and p.name != "in.jsonl")


def test_custom_properties_are_sealed_and_reach_analysts_only_as_present(tmp_path: Path) -> None:
    olga_clinic(tmp_path, JOURNEY_BATCH_SIZE="10", JOURNEY_INGEST_WORKERS="2")
    data = (tmp_path / "events.sqlite").read_bytes()
    assert b"Smirnova Olga" not in data and b"fear of needles" not in data and b'"north"' in data
    result = journey("sql", "SELECT properties FROM touchpoints WHERE event_id = 'pv-1'", "--format", "csv",
                     home=tmp_path)
    shown = json.loads(list(csv.reader(io.StringIO(result.stdout)))[1][0])
    assert shown == {"note": "present", "branch": "north", "extra": "present"}


def test_after_forget_no_file_under_home_holds_the_customer(tmp_path: Path) -> None:
    """The issue's example: built-in and custom touches, sealed by the ingest workers."""
    olga_clinic(tmp_path, JOURNEY_BATCH_SIZE="10", JOURNEY_INGEST_WORKERS="2")
    assert b"Smirnova Olga" in (tmp_path / "in.jsonl").read_bytes()  # what the scan looks for is real input
    result = journey("forget", "pat-991", "--yes", home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert journey("project", home=tmp_path).returncode == 0
    assert journey("rebuild", home=tmp_path).returncode == 0
    assert journey("report", "--out", str(tmp_path / "report.html"), home=tmp_path).returncode == 0
    data = _scan(tmp_path)
    assert b"+79160000007" not in data and b'"type":"booking"' in data  # others' phones sealed, facts clear
    for secret in OLGA_SECRETS:
        assert secret not in data, secret


def test_reseal_copies_the_store_into_a_new_one(tmp_path: Path) -> None:
    clinic(tmp_path)
    target = f"sqlite:///{tmp_path / 'sealed.sqlite'}"
    result = journey("reseal", target, "--json", home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"read": 6, "written": 6, "already_there": 0, "erased": 0}
    same = journey("reseal", f"sqlite:///{tmp_path / 'events.sqlite'}", home=tmp_path)
    assert same.returncode != 0 and "name a new one" in same.stderr
    assert journey("rebuild", home=tmp_path, JOURNEY_EVENT_STORE=target).returncode == 0
    moved = journey("sql", "SELECT count(*) FROM touchpoints", "--format", "csv", home=tmp_path,
                    JOURNEY_EVENT_STORE=target)
    assert moved.stdout.split() == ["count_star()", "6"], moved.stdout
