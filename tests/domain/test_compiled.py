"""The compiled checks against pydantic, the contract's definition (a differential test).

Whatever the compiled path decides, pydantic must decide the same: the record is valid
and its canonical bytes and identifiers are the same. The compiled path may leave a
record undecided (pydantic then decides), but not the demo clinic's or real logs'.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journey.demo.generator import generate_clinic
from journey.domain.properties import PROPERTY_MODELS
from journey.domain.touch import TOUCH_TYPES, CheckedTouch, _compiled_checks, check_touch, compiled_touch, parse_touch
from journey.domain.values import Customer
from journey.errors import InvalidTouchError
from journey.ingest.sources import EventLogColumns, read_event_log
from tests.touches import touch

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def compiled(raw: bytes, region: str | None = None) -> CheckedTouch | None:
    """The compiled path's verdict alone: the checked touch, or None (undecided)."""
    return compiled_touch(raw, region)


def pydantic_verdict(raw: bytes, region: str | None = None) -> CheckedTouch | str:
    """pydantic's verdict: the checked touch, or the rejection's code."""
    try:
        parsed = parse_touch(raw, default_region=region)
    except InvalidTouchError as error:
        return error.code
    customer = parsed.customer
    return CheckedTouch(parsed.event_id, parsed.type, parsed.content_json(),  # type: ignore[attr-defined]
                        customer.identifiers() if customer is not None else None)


def agrees(raw: bytes, region: str | None = None) -> bool:
    """Assert the compiled path agrees with pydantic on ``raw``; True if it decided."""
    fast = compiled(raw, region)
    if fast is not None:
        assert pydantic_verdict(raw, region) == fast, raw
    return fast is not None


def test_every_touch_type_compiles() -> None:
    assert set(_compiled_checks(None)) == set(TOUCH_TYPES)


@pytest.mark.parametrize("type_", TOUCH_TYPES)
def test_the_example_of_every_type_is_decided_alike(type_: str) -> None:
    assert agrees(orjson.dumps(touch(type_)))
    national = {"phone": "8 916 123 45 67", "customer_id": "P-1"}
    assert agrees(orjson.dumps(touch(type_, customer=national)), "RU")


def test_the_demo_clinic_is_decided_by_the_compiled_path_alike() -> None:
    records = [orjson.dumps(r) for r in generate_clinic(patients=1000, days=365)]
    assert len(records) > 9000
    assert all(agrees(r) for r in records)


@pytest.mark.parametrize("log", sorted(p.name for p in DATA.glob("*.csv")))
def test_real_event_logs_are_decided_by_the_compiled_path_alike(log: str) -> None:
    rows = read_event_log(str(DATA / log), EventLogColumns("case_id", "activity", "timestamp"))
    records = [r.raw for _, r in zip(range(3000), rows)]
    assert records
    assert all(agrees(r) for r in records)


def test_check_touch_gives_pydantic_verdicts_for_what_it_leaves() -> None:
    naive = orjson.dumps(touch(occurred_at="2025-03-01 09:30:00Z"))
    assert compiled(naive) is None
    assert check_touch(naive) == pydantic_verdict(naive)
    with pytest.raises(InvalidTouchError) as error:
        check_touch(orjson.dumps(touch(occurred_at="2025-03-01T09:30:00")))
    assert error.value.code == "naive_timestamp"
    with pytest.raises(InvalidTouchError) as error:
        check_touch(b"x" * 100, max_bytes=50)
    assert error.value.code == "oversized"


@pytest.mark.parametrize("stamp", [
    "2024-03-01T09:30:00Z", "2024-03-01T09:30:00+00:00", "2024-03-01T09:30:00-00:00",
    "2024-03-01T09:30:00.5+03:00", "2024-03-01T09:30:00.000+03:00", "2024-03-01T09:30:00.123456-05:30",
    "2024-02-29T23:59:59+23:59", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
])
def test_timestamps_in_the_written_form_are_decided_alike(stamp: str) -> None:
    assert agrees(orjson.dumps(touch(occurred_at=stamp)))


@pytest.mark.parametrize("stamp", [
    "2024-03-01 09:30:00Z", "2024-03-01t09:30:00z", "2024-03-01T09:30Z", "2024-03-01T09:30:00",
    "2024-03-01T09:30:00+0300", "2024-03-01T09:30:00.1234567Z", "2024-02-30T09:30:00Z", "2024-03-01T24:00:00Z",
    "2024-03-01T09:30:60Z", "2024-03-01T09:30:00+24:00", "2024-03-01T09:30:00+03:60", "2024-03-01T09:30:00.5+03:60",
    "0000-03-01T09:30:00Z", "2024-03-01", "20240301T093000Z", "2024-03-01T09:30:00+03:00:15",
    "\u0662\u0660\u0662\u0664-03-01T09:30:00Z", "\uff12\uff10\uff12\uff14-03-01T09:30:00Z",
])
def test_timestamps_in_other_forms_are_left_to_pydantic(stamp: str) -> None:
    assert not agrees(orjson.dumps(touch(occurred_at=stamp)))


@pytest.mark.parametrize("amount", ["1500.00", " 15.10 ", 1500, "-0", "0.000001", "999999999999999.999999", "007"])
def test_amounts_are_written_as_pydantic_writes_them(amount: Any) -> None:
    record = touch("payment")
    record["properties"]["amount"] = {"amount": amount, "currency": "RUB"}
    assert agrees(orjson.dumps(record))


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"x": value}
    return value


@pytest.mark.parametrize(("type_", "path", "value"), [
    ("payment", ("amount", "currency"), "RUB\n"),
    ("payment", ("amount", "currency"), "rub"),
    ("payment", ("amount", "amount"), "1e5"),
    ("payment", ("amount", "amount"), "1000000000000000"),
    ("payment", ("amount", "amount"), "0.0000001"),
    ("payment", ("amount", "amount"), 1.5),
    ("booking_cancelled", ("notice_hours",), 1e-7),
    ("booking_cancelled", ("notice_hours",), 1e16),
    ("booking_cancelled", ("notice_hours",), 2.5),
    ("profile", ("discount_card",), {"number": "DC-1", "discount_percent": 1e-6}),
    ("custom", ("big",), 1e16),
    ("custom", ("small",), [1.5e-7]),
    ("custom", ("plain",), [0.1, 1e15, -0.0]),
    ("custom", ("wide",), 2**70),
    ("custom", ("deep",), _nested(8)),
    ("custom", ("deeper",), _nested(9)),
    ("custom", ("long",), list(range(1001))),
    ("custom", ("keys",), {str(i): i for i in range(201)}),
    ("custom", ("null",), None),
    ("review", ("text",), "x" * 10_001),
    ("review", ("rating",), 6),
    ("call", ("tags",), ["x"] * 101),
    ("identity_link", (), {str(i): "v" for i in range(21)}),
    ("ad_spend", ("day",), "\u0662\u0660\u0662\u0665-03-01"),
    ("ad_spend", ("day",), "2025-02-29"),
    ("ad_spend", ("day",), "2025-03-01T00:00:00"),
])
def test_edge_values_are_decided_alike(type_: str, path: tuple[str, ...], value: Any) -> None:
    record = touch(type_)
    parent = record.setdefault("properties", {})
    if not path:
        record["properties"] = value
    else:
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = value
    agrees(json.dumps(record).encode())


@pytest.mark.parametrize("raw", [
    b'\xef\xbb\xbf{"event_id": "a"}',
    orjson.dumps(touch())[:-1] + b',"event_id":"e-2"}',
    orjson.dumps(touch("visit"))[:-1] + b',"type":"call"}',
    orjson.dumps(touch("call"))[:-1] + b',"type":"visit"}',
    orjson.dumps(touch("custom"))[:-1] + b',"type":"custom","activity":"again"}',
    orjson.dumps(touch())[:-1] + b',"customer":{"customer_id":"P-2"}}',
    orjson.dumps(touch("custom"))[:-2] + b',"ticket":8}}',
    orjson.dumps(touch()) + b" x",
    orjson.dumps(touch())[:-1] + b',"properties":{"direction":"inbound","answered":true,"tags":[1]}}',
    orjson.dumps(touch("custom", properties={"n": 1})).replace(b'"n":1', b'"n":123456789012345678901234'),
    orjson.dumps(touch("custom", properties={"n": "a"})).replace(b'"a"', b'"\x01"'),
    orjson.dumps(touch("custom", properties={"n": "a"})).replace(b'"a"', b'"\\ud800"'),
    b'\xff' + orjson.dumps(touch()),
    orjson.dumps(touch(customer={"phone": "+79161234567"})).replace(b"+79161234567", b"\xff\xfe"),
    orjson.dumps(touch("custom", properties={"n": "a"})).replace(b'"a"', b'"\xc3"'),
    orjson.dumps(touch("custom", properties={"n": "a"})).replace(b'"n"', b'"\xed\xa0\x80"'),
    orjson.dumps(touch("payment")).replace(b'"1500.00"', b"NaN"),
    orjson.dumps(touch("payment")).replace(b'"1500.00"', b"Infinity"),
])
def test_odd_raw_records_are_decided_alike(raw: bytes) -> None:
    agrees(raw)


def test_deep_nesting_is_left_to_pydantic() -> None:
    deep = orjson.dumps(touch("custom", properties={"x": 1})).replace(b'"x":1', b'"x":' + b"[" * 20_000 + b"]" * 20_000)
    assert compiled(deep) is None
    with pytest.raises(InvalidTouchError, match="recursion limit"):
        check_touch(deep, max_bytes=len(deep))


# --- generated: valid touches with one value replaced, added or removed -------------

_STAMPS = st.one_of(
    st.sampled_from(["2024-03-01 09:30:00Z", "2024-03-01t09:30:00z", "2024-03-01T09:30Z", "2024-03-01T09:30:00",
                     "2024-03-01T09:30:00+0300", "2024-03-01T09:30:00.1234567Z", "2024-02-30T09:30:00Z",
                     "2024-03-01T24:00:00Z", "2024-03-01T09:30:60Z", "2024-03-01T09:30:00+24:00",
                     "2024-03-01T09:30:00+03:60", "0000-03-01T09:30:00Z", "2024-03-01", "20240301T093000Z"]),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat(timespec="milliseconds")),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
)
_WORDS = st.sampled_from(["", " ", "\t", "\x1c", "\u3000x", "x", "x" * 200, "x" * 201, "Dr. Petrov", "RUB", "rub",
                          "RU", "RUB\n", "ÄBC", "inbound", "outbound", "sms", "card", "patient", "granted",
                          "reminder", "female", "2025-03-01", "2025-02-30", "2025-3-1", "1500.00", " 15 ", "1e5",
                          "-0", "0.0000001", "1000000000000000", "abc", "+7 916 123-45-67", "8 916 123 45 67",
                          "+1", " A@B.co ", "a@b", "x@y.z\n", "true", "1"])
_NUMBERS = st.one_of(
    st.sampled_from([-1, 0, 1, 5, 6, 10, 11, 100, 101, 1899, 1900, 2100, 2101, 2**53, 2**53 + 1, 2**63 - 1,
                     1.0, 0.5, -0.0, 1e16, 1e-7, 100.0, 100.5]),
    st.integers(), st.floats(allow_nan=False, allow_infinity=False),
)
_SCALARS = st.one_of(_STAMPS, _WORDS, st.text(max_size=12), _NUMBERS, st.booleans(), st.none())
_VALUES = st.one_of(
    _SCALARS,
    st.lists(_SCALARS, max_size=3),
    st.dictionaries(st.sampled_from(["amount", "currency", "number", "x"]), _SCALARS, max_size=3),
)


def _paths(type_: str) -> list[tuple[str, ...]]:
    """Where a value may go in a touch of ``type_``: every field of its models, and a typo."""
    envelope = ["event_id", "type", "occurred_at", "recorded_at", "customer", "channel", "source", "properties",
                "activity", "extra"]
    paths: list[tuple[str, ...]] = [(name,) for name in envelope]
    paths += [("customer", name) for name in (*Customer.model_fields, "extra")]
    model = PROPERTY_MODELS.get(type_)
    names = list(model.model_fields) if model is not None else ["ticket", "x", "customer"]
    paths += [("properties", name) for name in (*names, "ammount")]
    paths += [("properties", name, key) for name in ("amount", "cost", "total", "discount_card", "x")
              for key in ("amount", "currency", "number", "extra")]
    return paths


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    type_ = draw(st.sampled_from(TOUCH_TYPES))
    record = copy.deepcopy(touch(type_))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(type_)))
        parent: Any = record
        for key in path[:-1]:
            if not isinstance(parent.get(key), dict):
                parent[key] = {}
            parent = parent[key]
        if draw(st.booleans()) and path[-1] in parent:
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(_VALUES)
    return json.dumps(record, ensure_ascii=False).encode()  # integers of any width


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated(), st.sampled_from([None, "RU"]))
def test_mutated_touches_are_decided_alike(raw: bytes, region: str | None) -> None:
    agrees(raw, region)


_OFFSETS = st.integers(-1439, 1439).map(lambda minutes: timezone(timedelta(minutes=minutes)))


@given(st.sampled_from(TOUCH_TYPES), st.datetimes(timezones=_OFFSETS),
       st.sampled_from(["seconds", "milliseconds", "microseconds"]))
def test_valid_touches_are_decided_by_the_compiled_path(type_: str, when: datetime, spec: str) -> None:
    assert agrees(orjson.dumps(touch(type_, occurred_at=when.isoformat(timespec=spec))))
