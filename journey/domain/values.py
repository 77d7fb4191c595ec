"""Value types shared by the touch contract: money, timestamps, identifiers."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Annotated, Any

import phonenumbers
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

__all__ = [
    "CURRENCY_PATTERN",
    "Customer",
    "Day",
    "IDENTIFIER_KINDS",
    "Money",
    "PERSONAL_PROPERTIES",
    "Name",
    "Text",
    "Timestamp",
    "as_decimal",
    "bounded_amount",
    "iso_day",
    "normalise_email",
    "normalise_phone",
]

CURRENCY_PATTERN = r"^[A-Z]{3}$"
IDENTIFIER_KINDS = ("customer_id", "phone", "email", "anonymous_id")
"""A customer's identifier kinds, in priority order (the first present is the primary)."""
PERSONAL_PROPERTIES = ("text", "name", "notes")
"""Free-text properties that are personal data: encrypted in the store, never projected."""
_DECIMAL = re.compile(r"^\s*-?\d+(\.\d+)?\s*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

Name = Annotated[str, Field(min_length=1, max_length=200)]
"""A short label: a doctor, a campaign, a branch."""
Text = Annotated[str, Field(max_length=10_000)]
"""Free text: a review, a note."""


class Frozen(BaseModel):
    """Base of every contract model: immutable, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


Timestamp = Annotated[AwareDatetime, Strict()]
"""A timezone-aware instant, an RFC 3339 string on the wire. Naive timestamps are
rejected (strict: numbers are not timestamps). Validated in Rust, no Python hook."""


def iso_day(value: Any) -> Any:
    """Before a ``Day`` is parsed: only a string (or a date) may become one."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a calendar date string such as 2024-03-01")
    return value


Day = Annotated[date, BeforeValidator(iso_day)]


def as_decimal(value: Any) -> Decimal:
    """A money amount from its wire form (a decimal string or an integer), or ValueError."""
    if isinstance(value, bool):
        raise ValueError("must be a decimal string such as \"1500.00\"")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        raise ValueError(
            "is a JSON floating-point number; send money as a decimal string "
            "such as \"1500.50\" so no cent is lost"
        )
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str):
        if not _DECIMAL.match(value):
            raise ValueError(f"{value[:40]!r} is not a decimal number such as \"1500.00\"")
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{value[:40]!r} is not a decimal number") from None
    else:
        raise ValueError("must be a decimal string such as \"1500.00\"")
    if not amount.is_finite():
        raise ValueError("must be a finite number (NaN and Infinity are not money)")
    return amount


class Money(Frozen):
    """An amount with its currency. Never a float: amounts are decimal strings."""

    amount: Annotated[
        Decimal,
        BeforeValidator(as_decimal),
        WithJsonSchema(
            {
                "description": "a decimal string such as \"1500.00\", or an integer",
                "oneOf": [
                    {"type": "string", "pattern": r"^\s*-?\d+(\.\d+)?\s*$"},
                    {"type": "integer"},
                ],
            }
        ),
    ]
    currency: Annotated[str, Field(pattern=CURRENCY_PATTERN, description="ISO 4217 code")]

    @field_validator("amount")
    @classmethod
    def _bounded(cls, amount: Decimal) -> Decimal:
        return bounded_amount(amount)


_AMOUNT_LIMIT = Decimal(10) ** 15


def bounded_amount(amount: Decimal) -> Decimal:
    """``amount`` if it has at most 15 integer and 6 decimal digits, else ValueError."""
    if abs(amount) >= _AMOUNT_LIMIT or amount.as_tuple().exponent < -6:  # type: ignore[operator]
        raise ValueError("is out of range (at most 15 integer and 6 decimal digits)")
    return amount


@lru_cache(maxsize=200_000)
def normalise_phone(raw: str, region: str | None = None) -> str:
    """Return the E.164 form of ``raw`` or raise ValueError saying why not.

    A number without a country code needs ``region`` (an ISO 3166 code such as
    ``RU``), which the composition root takes from ``JOURNEY_DEFAULT_REGION``.
    """
    text = raw.strip()
    if not text.startswith("+") and region is None:
        raise ValueError(
            f"phone {raw[:30]!r} has no country code; send it in international "
            "format (+7...) or set JOURNEY_DEFAULT_REGION"
        )
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException as error:
        raise ValueError(f"phone {raw[:30]!r} is not a phone number ({error})") from None
    if not phonenumbers.is_possible_number(number):
        raise ValueError(f"phone {raw[:30]!r} is not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(raw: str) -> str:
    """The stored form of an email address (trimmed, lower case), or ValueError."""
    email = raw.strip().lower()
    if not _EMAIL.match(email):
        raise ValueError(f"{email[:60]!r} is not an email address")
    return email


class Customer(Frozen):
    """The identifiers a touch carries. At least one is required."""

    customer_id: Name | None = Field(None, description="the clinic's patient id")
    phone: Annotated[str, Field(min_length=3, max_length=40)] | None = Field(
        None, description="normalised to E.164"
    )
    email: Annotated[str, Field(max_length=320)] | None = None
    anonymous_id: Name | None = Field(None, description="web visitor or ad click id")

    @field_validator("phone")
    @classmethod
    def _e164(cls, phone: str | None, info: ValidationInfo) -> str | None:
        if phone is None:
            return None
        region = (info.context or {}).get("default_region")
        return normalise_phone(phone, region)

    @field_validator("email")
    @classmethod
    def _email(cls, email: str | None) -> str | None:
        return None if email is None else normalise_email(email)

    @model_validator(mode="after")
    def _at_least_one(self) -> Customer:
        if not (self.customer_id or self.phone or self.email or self.anonymous_id):
            raise ValueError(
                "needs at least one identifier: customer_id, phone, email or anonymous_id"
            )
        return self

    def identifiers(self) -> tuple[tuple[str, str], ...]:
        """The identifiers present, as ``(kind, value)`` pairs in a fixed order."""
        return tuple(
            (kind, value)
            for kind, value in (
                ("customer_id", self.customer_id),
                ("phone", self.phone),
                ("email", self.email),
                ("anonymous_id", self.anonymous_id),
            )
            if value is not None
        )
