"""The demo clinic: valid wire format v1, deterministic, and the story shows in the data."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from journey.demo import DEFAULT_START, generate_clinic, write_jsonl
from journey.domain.touch import BUILTIN_TYPES, parse_touch

Record = dict[str, Any]
MARKETING = {"promotion", "recall", "birthday"}


@pytest.fixture(scope="module")
def clinic() -> list[Record]:
    return list(generate_clinic(seed=7, patients=3000))


@pytest.fixture(scope="module")
def by_type(clinic: list[Record]) -> dict[str, list[Record]]:
    grouped: dict[str, list[Record]] = defaultdict(list)
    for record in clinic:
        grouped[record["type"]].append(record)
    return grouped


def _at(record: Record) -> datetime:
    return datetime.fromisoformat(record["occurred_at"])


# -- the contract --------------------------------------------------------------------------


def test_every_record_of_a_small_clinic_passes_the_contract() -> None:
    records = list(generate_clinic(seed=11, patients=300))
    assert len(records) > 1000
    for record in records:
        touch = parse_touch(orjson.dumps(record))
        assert touch.content() is not None
        assert "recorded_at" not in record
        assert record["occurred_at"].endswith("+03:00")


def test_all_built_in_types_occur(by_type: dict[str, list[Record]]) -> None:
    assert set(by_type) == set(BUILTIN_TYPES)


def test_event_ids_are_unique(clinic: list[Record]) -> None:
    ids = [record["event_id"] for record in clinic]
    assert len(ids) == len(set(ids))


def test_touches_fall_inside_the_simulated_period(clinic: list[Record]) -> None:
    end = DEFAULT_START + timedelta(days=365)
    assert all(DEFAULT_START <= _at(record) < end for record in clinic)


def test_money_is_a_decimal_string_in_rubles(by_type: dict[str, list[Record]]) -> None:
    amounts = [r["properties"]["amount"] for r in by_type["payment"]]
    amounts += [r["properties"]["cost"] for r in by_type["ad_spend"]]
    assert all(isinstance(m["amount"], str) and m["currency"] == "RUB" for m in amounts)


def test_touches_of_one_patient_come_in_time_order(clinic: list[Record]) -> None:
    last: dict[str, datetime] = {}
    for record in clinic:
        customer_id = record.get("customer", {}).get("customer_id")
        if customer_id is None:
            continue
        at = _at(record)
        assert at >= last.get(customer_id, at)
        last[customer_id] = at


def test_a_start_without_offset_is_refused() -> None:
    with pytest.raises(ValueError, match="offset"):
        generate_clinic(start=datetime(2025, 1, 1))


# -- determinism -----------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_clinic() -> None:
    first = list(generate_clinic(seed=3, patients=200))
    assert first == list(generate_clinic(seed=3, patients=200))


def test_another_seed_gives_another_clinic() -> None:
    first = [orjson.dumps(r) for r in generate_clinic(seed=3, patients=200)]
    second = [orjson.dumps(r) for r in generate_clinic(seed=4, patients=200)]
    assert first != second


def test_write_jsonl_writes_one_object_per_line(tmp_path: Path) -> None:
    path = tmp_path / "clinic.jsonl"
    records = list(generate_clinic(seed=5, patients=50, days=30))
    assert write_jsonl(path, iter(records)) == len(records)
    lines = path.read_bytes().splitlines()
    assert [orjson.loads(line) for line in lines] == records


# -- identities -------------------------------------------------------------------------------


def test_identifiers_follow_the_journey(by_type: dict[str, list[Record]]) -> None:
    assert all(set(r["customer"]) == {"anonymous_id"} for r in by_type["ad_click"])
    tracked = [r for r in by_type["call"] if "anonymous_id" in r["customer"]]
    assert all(set(r["customer"]) <= {"phone", "anonymous_id"} for r in by_type["call"])
    assert tracked, "call tracking links some calls to the web visitor who dialled"
    assert all(r["properties"]["direction"] == "inbound" for r in tracked)
    assert all(set(r["customer"]) == {"anonymous_id", "phone"} for r in by_type["form"])
    assert all(set(r["customer"]) == {"customer_id", "phone"} for r in by_type["booking"])
    assert all(r["customer"]["phone"].startswith("+79") for r in by_type["call"])


def test_some_parents_book_children_on_their_own_phone(by_type: dict[str, list[Record]]) -> None:
    customers_of: dict[str, set[str]] = defaultdict(set)
    for booking in by_type["booking"]:
        customers_of[booking["customer"]["phone"]].add(booking["customer"]["customer_id"])
    shared = [ids for ids in customers_of.values() if len(ids) > 1]
    assert 5 <= len(shared) < 0.05 * len(customers_of)
    assert all(len(ids) == 2 for ids in shared)


def test_referrals_name_an_existing_patient(by_type: dict[str, list[Record]]) -> None:
    patients = {r["customer"]["customer_id"] for r in by_type["visit"]}
    referrals = by_type["referral"]
    assert referrals
    assert all(r["properties"]["kind"] == "patient" for r in referrals)
    assert all(r["properties"]["referrer"] in patients for r in referrals)


# -- the story ------------------------------------------------------------------------------


def test_one_administrator_misses_far_more_calls(by_type: dict[str, list[Record]]) -> None:
    calls: Counter[str] = Counter()
    missed: Counter[str] = Counter()
    for call in by_type["call"]:
        props = call["properties"]
        if props["direction"] == "inbound":
            calls[props["administrator"]] += 1
            missed[props["administrator"]] += not props["answered"]
    rates = {name: missed[name] / calls[name] for name in calls}
    assert len(rates) in (4, 5)
    assert rates.pop("Irina") > 0.2
    assert max(rates.values()) < 0.12


def test_about_nine_in_ten_first_inquiries_are_calls(by_type: dict[str, list[Record]]) -> None:
    first: dict[str, str] = {}
    for record in sorted(by_type["call"] + by_type["form"], key=_at):
        first.setdefault(record["customer"]["phone"], record["type"])
    share = Counter(first.values())["call"] / len(first)
    assert 0.85 < share < 0.96


def test_reminded_patients_no_show_less(by_type: dict[str, list[Record]]) -> None:
    reminded = {
        m["properties"]["booking_id"]
        for m in by_type["message"]
        if m["properties"]["purpose"] == "reminder"
    }
    no_shows = {r["properties"]["booking_id"] for r in by_type["no_show"]}
    settled = no_shows | {r["properties"]["booking_id"] for r in by_type["visit"]}

    def rate(group: set[str]) -> float:
        return len(group & no_shows) / len(group)

    assert rate(settled & reminded) * 2 < rate(settled - reminded)


def test_channels_convert_differently(by_type: dict[str, list[Record]]) -> None:
    channel_of: dict[str, str] = {}
    for record in sorted(by_type["call"] + by_type["form"] + by_type["referral"], key=_at):
        channel_of.setdefault(record["customer"]["phone"], record["channel"])
    booked = {r["customer"]["phone"] for r in by_type["booking"]}
    tried = Counter(channel_of.values())
    won = Counter(channel for phone, channel in channel_of.items() if phone in booked)
    rate = {channel: won[channel] / tried[channel] for channel in tried}
    assert {"search_ads", "social", "seo", "display", "email", "offline", "referral"} <= set(rate)
    assert rate["referral"] > rate["search_ads"] > rate["display"] + 0.2


def test_the_first_visit_doctor_decides_who_comes_back(by_type: dict[str, list[Record]]) -> None:
    doctor_of: dict[str, str] = {}
    visits: Counter[str] = Counter()
    for visit in by_type["visit"]:
        customer_id = visit["customer"]["customer_id"]
        visits[customer_id] += 1
        if visit["properties"]["first_visit"]:
            doctor_of[customer_id] = visit["properties"]["doctor"]
    repeats: dict[str, list[int]] = defaultdict(list)
    for customer_id, doctor in doctor_of.items():
        repeats[doctor].append(visits[customer_id] - 1)
    mean = {doctor: sum(n) / len(n) for doctor, n in repeats.items()}
    assert mean["Dr. Petrov"] > 2 * mean["Dr. Volkov"]


def test_plans_are_proposed_then_decided(by_type: dict[str, list[Record]]) -> None:
    status: dict[str, list[str]] = defaultdict(list)
    for plan in by_type["treatment_plan"]:
        status[plan["properties"]["plan_id"]].append(plan["properties"]["status"])
    assert all(s[0] == "proposed" and len(s) <= 2 for s in status.values())
    decided = Counter(s[1] for s in status.values() if len(s) == 2)
    assert decided["accepted"] and decided["declined"]


def test_ad_spend_is_one_per_channel_per_day_without_customer(
    by_type: dict[str, list[Record]],
) -> None:
    spend = by_type["ad_spend"]
    assert all("customer" not in r for r in spend)
    days = {(r["channel"], r["properties"]["day"]) for r in spend}
    assert len(days) == len(spend) == 6 * 365
    clicks = Counter((r["channel"], r["occurred_at"][:10]) for r in by_type["ad_click"])
    reported = {
        (r["channel"], r["properties"]["day"]): r["properties"]["clicks"]
        for r in spend
        if "clicks" in r["properties"]
    }
    assert all(reported[key] == count for key, count in clicks.items())
    assert sum(reported.values()) == sum(clicks.values())


def test_a_few_marketing_messages_break_consent(by_type: dict[str, list[Record]]) -> None:
    grants: dict[str, list[tuple[datetime, str, str]]] = defaultdict(list)
    for consent in by_type["consent"]:
        props = consent["properties"]
        if props["purpose"] == "marketing":
            grants[consent["customer"]["customer_id"]].append(
                (_at(consent), props["action"], props["channel"])
            )
    marketing = [m for m in by_type["message"] if m["properties"]["purpose"] in MARKETING]

    def allowed(message: Record) -> bool:
        state = False
        for at, action, channel in sorted(grants[message["customer"]["customer_id"]]):
            if at <= _at(message) and channel in (message["properties"]["medium"], "all"):
                state = action == "granted"
        return state

    breaches = [m for m in marketing if not allowed(m)]
    assert 0 < len(breaches) < 0.05 * len(marketing)
    assert any(c["properties"]["action"] == "withdrawn" for c in by_type["consent"])


def test_profiles_carry_a_portrait(by_type: dict[str, list[Record]]) -> None:
    booked = {r["customer"]["customer_id"] for r in by_type["booking"]}
    profiled = {r["customer"]["customer_id"] for r in by_type["profile"]}
    assert booked <= profiled
    keys = {"birth_year", "sex", "city", "district", "problem", "fears"}
    assert all(keys <= set(r["properties"]) for r in by_type["profile"])


def test_unhappy_reviews_exist_and_some_stay_unanswered(
    by_type: dict[str, list[Record]],
) -> None:
    public = [r["properties"] for r in by_type["review"] if r["properties"]["platform"] != "survey"]
    negative = [p for p in public if p["rating"] <= 2]
    assert negative and any(not p["answered"] for p in negative)
    assert all("text" in p for p in negative)
