"""Valid example touches, one per type, for tests."""

from __future__ import annotations

from typing import Any

import copy

import orjson

WHEN = "2025-03-01T09:30:00+03:00"
RUB = {"amount": "1500.00", "currency": "RUB"}

PROPERTIES: dict[str, dict[str, Any]] = {
    "ad_click": {"campaign": "implants-spring", "keyword": "dental implant price",
                 "utm_source": "yandex", "click_id": "yclid-1", "cost": {"amount": "35.20", "currency": "RUB"}},
    "call": {"direction": "inbound", "answered": False, "administrator": "Irina",
             "tracking_number": "+74950000001", "duration_seconds": 0, "outcome": "callback"},
    "message": {"medium": "sms", "purpose": "reminder", "booking_id": "b-1"},
    "form": {"form": "online-booking", "page": "/implants", "doctor": "Dr. Petrov",
             "requested_at": "2025-03-05T10:00:00+03:00"},
    "booking": {"booking_id": "b-1", "scheduled_at": "2025-03-05T10:00:00+03:00",
                "service": "consultation", "doctor": "Dr. Petrov", "booked_via": "phone",
                "administrator": "Anna", "first_visit": True},
    "booking_cancelled": {"booking_id": "b-1", "cancelled_by": "patient", "reason": "ill",
                          "notice_hours": 20},
    "no_show": {"booking_id": "b-1", "doctor": "Dr. Petrov"},
    "visit": {"visit_id": "v-1", "booking_id": "b-1", "doctor": "Dr. Petrov",
              "services": ["consultation", "x-ray"], "amount": RUB, "payment_method": "card",
              "first_visit": True},
    "treatment_plan": {"plan_id": "p-1", "status": "proposed", "doctor": "Dr. Petrov",
                       "total": {"amount": "185000", "currency": "RUB"}, "stages": 3},
    "payment": {"payment_id": "pay-1", "amount": RUB, "method": "insurance", "visit_id": "v-1"},
    "referral": {"kind": "patient", "referrer": "P-0042"},
    "review": {"platform": "maps", "rating": 2, "text": "long wait", "answered": False},
    "consent": {"action": "granted", "channel": "sms", "purpose": "marketing"},
    "profile": {"birth_year": 1984, "sex": "female", "city": "Moscow", "income": "middle",
                "fears": ["pain"], "discount_card": {"number": "DC-1", "discount_percent": 5}},
    "ad_spend": {"day": "2025-03-01", "cost": {"amount": "12000.00", "currency": "RUB"},
                 "campaign": "implants-spring", "clicks": 310},
}


def touch(type_: str = "call", event_id: str = "e-1", **overrides: Any) -> dict[str, Any]:
    """A valid touch of this type; keyword arguments replace envelope fields."""
    record: dict[str, Any] = {
        "event_id": event_id,
        "type": type_,
        "occurred_at": WHEN,
        "customer": {"customer_id": "P-1", "phone": "+7 916 123-45-67"},
        "channel": "phone",
        "source": "test",
    }
    if type_ == "custom":
        record["activity"] = "Assign seriousness"
        record["properties"] = {"ticket": 7}
    elif type_ in ("identity_link", "identity_unlink"):
        record["customer"] = {"customer_id": "P-1", "anonymous_id": "web-1"}
    else:
        record["properties"] = copy.deepcopy(PROPERTIES[type_])
    if type_ == "ad_spend":
        del record["customer"]
    record.update(overrides)
    return record


def raw(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)
