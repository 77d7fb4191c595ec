"""Consent in force and compliance violations, against a plain-Python oracle."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from journey.demo import generate_clinic
from journey.projections.consent import MARKETING
from journey.store.event_store import EventStore
from tests.projections.helpers import PSEUDONYMS, append, project, rows
from tests.touches import touch

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=3)))
ANNA = {"customer_id": "P-1", "phone": "+79161234567"}


def at(days: int) -> str:
    return (T0 + timedelta(days=days)).isoformat()


def consent(event_id: str, day: int, action: str, channel: str, purpose: str) -> dict[str, Any]:
    return touch("consent", event_id, occurred_at=at(day), customer=ANNA,
                 properties={"action": action, "channel": channel, "purpose": purpose})


def message(event_id: str, day: int, medium: str, purpose: str) -> dict[str, Any]:
    return touch("message", event_id, occurred_at=at(day), customer=ANNA,
                 properties={"medium": medium, "purpose": purpose})


def test_each_outbound_message_is_checked_against_the_consent_in_force(store: EventStore, tmp_path: Path) -> None:
    append(store,
           message("m0", 0, "sms", "promotion"),            # before any grant
           consent("c1", 1, "granted", "sms", "marketing"),
           message("m2", 2, "sms", "promotion"),            # allowed
           message("m2e", 2, "email", "newsletter"),        # no email grant
           message("m2r", 2, "sms", "reminder"),            # reminders never refused: allowed
           consent("c3", 3, "withdrawn", "all", "marketing"),
           consent("c3r", 3, "withdrawn", "sms", "reminders"),
           message("m4", 4, "sms", "birthday"),             # after the withdrawal
           message("m4r", 4, "sms", "reminder"),            # after reminders were refused
           message("m4t", 4, "sms", "thank_you"))           # neither marketing nor a reminder
    con = project(store, tmp_path / "p.duckdb").con
    day3 = datetime.fromisoformat(at(3))
    assert rows(con, "SELECT event_id, channel, reason, consent_changed_at FROM consent_violations "
                     "ORDER BY event_id") == [
        ("m0", "sms", "marketing without consent", None),
        ("m2e", "email", "marketing without consent", None),
        ("m4", "sms", "marketing after consent was withdrawn", day3),
        ("m4r", "sms", "reminder after reminders were refused", day3),
    ]
    assert rows(con, "SELECT DISTINCT customer_id FROM consent_violations") == [(PSEUDONYMS.key("customer_id", "P-1"),)]
    assert rows(con, "SELECT channel, purpose, granted FROM consent_state ORDER BY ALL") == [
        ("calls", "marketing", False), ("email", "marketing", False), ("messenger", "marketing", False),
        ("sms", "marketing", False), ("sms", "reminders", False)]


def oracle(records: list[dict[str, Any]]) -> set[str]:
    """The demo's marketing messages sent without marketing consent in force."""
    grants: dict[str, list[tuple[datetime, str, str]]] = defaultdict(list)
    for r in records:
        if r["type"] == "consent" and r["properties"]["purpose"] == "marketing":
            p = r["properties"]
            grants[r["customer"]["customer_id"]].append((datetime.fromisoformat(r["occurred_at"]), p["action"], p["channel"]))
    breaches = set()
    for m in records:
        if m["type"] != "message" or m["properties"]["purpose"] not in MARKETING:
            continue
        state, when = False, datetime.fromisoformat(m["occurred_at"])
        for moment, action, channel in sorted(grants[m["customer"]["customer_id"]]):
            if moment <= when and channel in (m["properties"]["medium"], "all"):
                state = action == "granted"
        if not state:
            breaches.add(m["event_id"])
    return breaches


def test_the_demo_clinic_violations_are_found_exactly(store: EventStore, tmp_path: Path) -> None:
    records = list(generate_clinic(seed=11, patients=1500))
    for start in range(0, len(records), 5000):
        append(store, *records[start:start + 5000])
    con = project(store, tmp_path / "p.duckdb").con
    found = {e for (e,) in rows(con, "SELECT event_id FROM consent_violations WHERE purpose <> 'reminder'")}
    expected = oracle(records)
    assert expected and found == expected
