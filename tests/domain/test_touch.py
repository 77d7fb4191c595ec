"""The touch contract: every type accepted, every rejection reason explained."""

from __future__ import annotations

from decimal import Decimal

import pytest

from journey.domain.touch import TOUCH_TYPES, parse_touch
from journey.errors import InvalidTouchError
from tests.touches import PROPERTIES, raw, touch


@pytest.mark.parametrize("type_", TOUCH_TYPES)
def test_every_type_is_accepted_and_round_trips(type_: str) -> None:
    parsed = parse_touch(raw(touch(type_)))
    assert parsed.type == type_  # type: ignore[attr-defined]
    again = parse_touch(raw(parsed.content()))
    assert again.content() == parsed.content()


@pytest.mark.parametrize("type_", list(PROPERTIES))
def test_unknown_property_of_each_builtin_type_is_rejected(type_: str) -> None:
    record = touch(type_)
    record["properties"] = {**record["properties"], "ammount": 1}
    with pytest.raises(InvalidTouchError) as error:
        parse_touch(raw(record))
    assert error.value.code == "unknown_property"
    assert "properties.ammount" in error.value.reason
    assert "spelling" in error.value.reason


def test_phone_is_normalised_to_e164() -> None:
    parsed = parse_touch(raw(touch(customer={"phone": "+7 (916) 123-45-67"})))
    assert parsed.customer.phone == "+79161234567"


def test_national_phone_needs_a_region_and_says_so() -> None:
    record = raw(touch(customer={"phone": "8 916 123 45 67"}))
    with pytest.raises(InvalidTouchError, match="JOURNEY_DEFAULT_REGION"):
        parse_touch(record)
    assert parse_touch(record, default_region="RU").customer.phone == "+79161234567"


def test_email_is_lowercased() -> None:
    assert parse_touch(raw(touch(customer={"email": " Anna@Clinic.RU "}))).customer.email == "anna@clinic.ru"


def test_money_is_decimal_and_keeps_every_digit() -> None:
    record = touch("payment")
    record["properties"]["amount"] = {"amount": "12345678901.123456", "currency": "RUB"}
    parsed = parse_touch(raw(record))
    assert parsed.properties.amount.amount == Decimal("12345678901.123456")  # type: ignore[attr-defined]
    assert parsed.content()["properties"]["amount"]["amount"] == "12345678901.123456"


def test_integer_money_is_accepted() -> None:
    record = touch("payment")
    record["properties"]["amount"] = {"amount": 1500, "currency": "RUB"}
    assert parse_touch(raw(record)).properties.amount.amount == 1500  # type: ignore[attr-defined]


def test_ad_spend_needs_no_customer_but_other_touches_do() -> None:
    assert parse_touch(raw(touch("ad_spend"))).customer is None
    record = touch("call")
    del record["customer"]
    with pytest.raises(InvalidTouchError) as error:
        parse_touch(raw(record))
    assert error.value.code == "missing_field"
    assert "customer" in error.value.reason


def test_custom_touch_takes_free_properties() -> None:
    parsed = parse_touch(raw(touch("custom", activity="Recall call", properties={"a": {"b": [1, "x"]}})))
    assert parsed.activity_name == "Recall call"


def test_activity_up_to_200_characters() -> None:
    assert parse_touch(raw(touch("custom", activity="x" * 200)))
    with pytest.raises(InvalidTouchError, match="activity"):
        parse_touch(raw(touch("custom", activity="x" * 201)))


# Every rejection reason: (record change, expected code, words the reason must contain)
REJECTIONS = [
    (lambda r: r.update(occurred_at="2025-03-01T09:30:00"), "naive_timestamp", "timezone offset"),
    (lambda r: r.update(occurred_at=1740810600), "wrong_type", "RFC 3339"),
    (lambda r: r.update(occurred_at="yesterday"), "wrong_type", "occurred_at"),
    (lambda r: r.pop("event_id"), "missing_field", "event_id"),
    (lambda r: r.pop("occurred_at"), "missing_field", "occurred_at"),
    (lambda r: r.update(event_id=""), "invalid_value", "event_id"),
    (lambda r: r.update(type="telegram"), "unknown_type", "must be one of"),
    (lambda r: r.pop("type"), "missing_field", "type"),
    (lambda r: r.update(customer={}), "invalid_value", "at least one identifier"),
    (lambda r: r.update(customer={"phone": "abc"}), "invalid_value", "phone"),
    (lambda r: r.update(customer={"email": "not-an-email"}), "invalid_value", "email"),
    (lambda r: r.update(recorded_at="2025-03-01T09:30:00Z"), "invalid_value", "set by the engine"),
    (lambda r: r.update(colour="red"), "unknown_property", "colour"),
    (lambda r: r["properties"].update(answered="maybe"), "wrong_type", "properties.answered"),
    (lambda r: r["properties"].update(direction="sideways"), "invalid_value", "properties.direction"),
    (lambda r: r["properties"].pop("direction"), "missing_field", "properties.direction"),
    (lambda r: r["properties"].update(duration_seconds=-5), "invalid_value", "greater than or equal"),
]


@pytest.mark.parametrize(("change", "code", "words"), REJECTIONS)
def test_rejection_reasons(change, code: str, words: str) -> None:  # noqa: ANN001
    record = touch("call")
    change(record)
    with pytest.raises(InvalidTouchError) as error:
        parse_touch(raw(record))
    assert error.value.code == code, error.value.reason
    assert words in error.value.reason


@pytest.mark.parametrize(
    ("amount", "words"),
    [(1500.5, "floating-point"), ("NaN", "decimal number"), ("Infinity", "decimal number"),
     ("1e5", "decimal number"), ("12,50", "decimal number"), (True, "decimal string"),
     ("1" * 20, "out of range")],
)
def test_money_that_is_not_exact_decimal_is_rejected(amount: object, words: str) -> None:
    record = touch("payment")
    record["properties"]["amount"] = {"amount": amount, "currency": "RUB"}
    with pytest.raises(InvalidTouchError, match=words):
        parse_touch(raw(record))


def test_nan_literal_in_money_is_rejected() -> None:
    text = raw(touch("payment")).replace(b'"1500.00"', b"NaN")
    with pytest.raises(InvalidTouchError):
        parse_touch(text)


def test_currency_must_be_iso_code() -> None:
    record = touch("payment")
    record["properties"]["amount"] = {"amount": "1", "currency": "rubles"}
    with pytest.raises(InvalidTouchError, match="currency"):
        parse_touch(raw(record))


def test_bad_json_is_rejected() -> None:
    with pytest.raises(InvalidTouchError) as error:
        parse_touch(b'{"event_id": "e-1", ')
    assert error.value.code == "bad_json"


def test_json_that_is_not_an_object_is_rejected() -> None:
    with pytest.raises(InvalidTouchError):
        parse_touch(b"[1, 2, 3]")


def test_invalid_utf8_is_rejected() -> None:
    with pytest.raises(InvalidTouchError) as error:
        parse_touch(raw(touch()).replace(b"Irina", b"Ir\xffna"))
    assert error.value.code == "bad_encoding"


def test_oversized_record_is_rejected_before_parsing() -> None:
    record = raw(touch("custom", properties={"blob": "x" * 70_000}))
    with pytest.raises(InvalidTouchError) as error:
        parse_touch(record)
    assert error.value.code == "oversized"
    assert "65536" in error.value.reason


def test_deep_nesting_is_rejected() -> None:
    nested: object = 1
    for _ in range(12):
        nested = {"k": nested}
    with pytest.raises(InvalidTouchError, match="nest deeper"):
        parse_touch(raw(touch("custom", properties={"x": nested})))


def test_pathological_nesting_does_not_crash_the_parser() -> None:
    with pytest.raises(InvalidTouchError):
        parse_touch(b"[" * 60_000 + b"]" * 60_000)


def test_nan_in_custom_properties_is_rejected() -> None:
    text = raw(touch("custom", properties={"score": 1})).replace(b'"score":1', b'"score":NaN')
    with pytest.raises(InvalidTouchError, match="NaN"):
        parse_touch(text)


def test_identity_link_needs_two_identifiers() -> None:
    with pytest.raises(InvalidTouchError, match="two identifiers"):
        parse_touch(raw(touch("identity_link", customer={"customer_id": "P-1"})))
