"""Property models of the built-in touch types, one per type, from the clinic domain.

Unknown keys are rejected so that a typo (``ammount``) never passes silently.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, JsonValue

from journey.domain.channels import ConsentChannel
from journey.domain.values import Day, Frozen, Money, Name, Text, Timestamp

__all__ = [
    "PROPERTY_MODELS",
    "check_custom_shape",
    "AdClickProperties",
    "AdSpendProperties",
    "BookingCancelledProperties",
    "BookingProperties",
    "CallProperties",
    "ConsentProperties",
    "CustomProperties",
    "FormProperties",
    "MessageProperties",
    "NoShowProperties",
    "PaymentProperties",
    "ProfileProperties",
    "ReferralProperties",
    "ReviewProperties",
    "TreatmentPlanProperties",
    "VisitProperties",
]

Count = Annotated[int, Field(ge=0)]
Labels = Annotated[list[Name], Field(max_length=100)]
PaymentMethod = Literal["card", "cash", "credit", "insurance", "transfer", "other"]


class AdClickProperties(Frozen):
    campaign: Name | None = None
    ad_group: Name | None = None
    keyword: Name | None = None
    utm_source: Name | None = None
    utm_medium: Name | None = None
    utm_campaign: Name | None = None
    utm_content: Name | None = None
    utm_term: Name | None = None
    landing_page: Annotated[str, Field(max_length=2000)] | None = None
    click_id: Name | None = None
    cost: Money | None = None


class CallProperties(Frozen):
    direction: Literal["inbound", "outbound"]
    answered: bool
    administrator: Name | None = None
    tracking_number: Name | None = Field(None, description="call-tracking substitution number")
    duration_seconds: Count | None = None
    wait_seconds: Count | None = None
    outcome: Literal["booked", "callback", "info", "complaint", "other"] | None = None
    tags: Labels = []
    recording_ref: Name | None = None
    branch: Name | None = None


class MessageProperties(Frozen):
    medium: Literal["sms", "email", "messenger", "push"]
    direction: Literal["outbound", "inbound"] = "outbound"
    purpose: Literal[
        "reminder",
        "confirmation",
        "thank_you",
        "recall",
        "care",
        "promotion",
        "birthday",
        "newsletter",
        "reply",
        "other",
    ]
    template: Name | None = None
    booking_id: Name | None = None
    administrator: Name | None = None
    delivered: bool | None = None


class FormProperties(Frozen):
    form: Name | None = None
    page: Annotated[str, Field(max_length=2000)] | None = None
    service: Name | None = None
    doctor: Name | None = None
    branch: Name | None = None
    requested_at: Timestamp | None = None


class BookingProperties(Frozen):
    booking_id: Name
    scheduled_at: Timestamp
    service: Name | None = None
    doctor: Name | None = None
    branch: Name | None = None
    booked_via: Literal["phone", "online", "walk_in", "messenger", "other"] | None = None
    administrator: Name | None = None
    first_visit: bool | None = None
    rescheduled_from: Name | None = Field(None, description="booking_id this one replaces")


class BookingCancelledProperties(Frozen):
    booking_id: Name
    cancelled_by: Literal["patient", "clinic"]
    reason: Name | None = None
    notice_hours: Annotated[float, Field(ge=0)] | None = None
    rescheduled: bool = False
    administrator: Name | None = None


class NoShowProperties(Frozen):
    booking_id: Name
    scheduled_at: Timestamp | None = None
    doctor: Name | None = None
    branch: Name | None = None


class VisitProperties(Frozen):
    visit_id: Name
    booking_id: Name | None = None
    doctor: Name | None = None
    branch: Name | None = None
    services: Labels = []
    amount: Money | None = None
    payment_method: PaymentMethod | None = None
    first_visit: bool | None = None


class TreatmentPlanProperties(Frozen):
    plan_id: Name
    status: Literal["proposed", "accepted", "declined"]
    doctor: Name | None = None
    services: Labels = []
    total: Money | None = None
    stages: Annotated[int, Field(ge=1, le=100)] | None = None
    decline_reason: Name | None = None


class PaymentProperties(Frozen):
    payment_id: Name
    amount: Money
    method: PaymentMethod | None = None
    visit_id: Name | None = None
    plan_id: Name | None = None


class ReferralProperties(Frozen):
    kind: Literal["doctor", "patient", "partner", "corporate"]
    referrer: Name | None = Field(
        None, description="the referring doctor, patient's customer_id, partner or company"
    )
    to_doctor: Name | None = None
    partner: Name | None = None


class ReviewProperties(Frozen):
    platform: Literal["site", "maps", "portal", "social", "survey", "other"]
    rating: Annotated[int, Field(ge=1, le=5)] | None = None
    nps: Annotated[int, Field(ge=0, le=10)] | None = None
    text: Text | None = None
    answered: bool | None = None
    doctor: Name | None = None
    explained_problem: bool | None = None
    explained_complications: bool | None = None
    explained_guarantees: bool | None = None
    price_justified: bool | None = None


class ConsentProperties(Frozen):
    action: Literal["granted", "withdrawn"]
    channel: Literal[ConsentChannel, "all"]
    purpose: Literal["reminders", "marketing", "personal_data"]
    document_ref: Name | None = None


class DiscountCard(Frozen):
    number: Name
    discount_percent: Annotated[float, Field(ge=0, le=100)] | None = None
    purchase_total: Money | None = None


class ProfileProperties(Frozen):
    name: Name | None = None
    birth_year: Annotated[int, Field(ge=1900, le=2100)] | None = None
    sex: Literal["female", "male", "other"] | None = None
    city: Name | None = None
    district: Name | None = None
    social_status: Name | None = None
    income: Literal["low", "middle", "high"] | None = None
    family: Name | None = None
    education: Name | None = None
    problem: Name | None = None
    fears: Labels = []
    conditions: Labels = []
    """What a targeted offer must respect (health data): e.g. pregnant, prosthesis_smile_zone, bite_risk."""
    discount_card: DiscountCard | None = None
    notes: Text | None = None


class AdSpendProperties(Frozen):
    day: Day
    cost: Money
    campaign: Name | None = None
    clicks: Count | None = None
    impressions: Count | None = None


MAX_DEPTH = 8
MAX_KEYS = 200
MAX_ITEMS = 1000


def _check_shape(value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"nest deeper than {MAX_DEPTH} levels; flatten them")
    if isinstance(value, dict):
        if len(value) > MAX_KEYS:
            raise ValueError(f"have more than {MAX_KEYS} keys in one object")
        for item in value.values():
            _check_shape(item, depth + 1)
    elif isinstance(value, list):
        if len(value) > MAX_ITEMS:
            raise ValueError(f"hold a list of more than {MAX_ITEMS} items")
        for item in value:
            _check_shape(item, depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("hold NaN or Infinity, which JSON does not allow")


def check_custom_shape(value: Any) -> Any:
    """Before custom properties are parsed: bounded in depth and size, no NaN."""
    if isinstance(value, dict):
        try:
            _check_shape(value)
        except ValueError as error:
            raise ValueError(f"custom properties {error}") from None
    return value


CustomProperties = Annotated[dict[str, JsonValue], BeforeValidator(check_custom_shape)]
"""Free-form properties of a custom touch, bounded in depth and size."""


PROPERTY_MODELS: dict[str, type[Frozen]] = {
    "ad_click": AdClickProperties,
    "call": CallProperties,
    "message": MessageProperties,
    "form": FormProperties,
    "booking": BookingProperties,
    "booking_cancelled": BookingCancelledProperties,
    "no_show": NoShowProperties,
    "visit": VisitProperties,
    "treatment_plan": TreatmentPlanProperties,
    "payment": PaymentProperties,
    "referral": ReferralProperties,
    "review": ReviewProperties,
    "consent": ConsentProperties,
    "profile": ProfileProperties,
    "ad_spend": AdSpendProperties,
}
"""The built-in touch types and the model of their ``properties``."""
