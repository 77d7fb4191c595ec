"""Sealing custom touches: private by default, declared analytic properties clear."""

from __future__ import annotations

import orjson

from journey.crypto.keys import InMemoryKeyStore
from journey.crypto.policy import parse_policy
from journey.crypto.sealer import Sealer
from tests.stores import PSEUDONYMS, WRAP

POLICY = parse_policy('[[property]]\nname = "branch"\nkind = "code"\nanalytic = true\n', "test")
TOUCH = {"event_id": "pv-1", "type": "custom", "activity": "called", "occurred_at": "2025-05-01T10:00:00Z",
         "customer": {"customer_id": "pat-991", "phone": "+79165551234"},
         "properties": {"note": "Smirnova Olga asked about implants", "branch": "north", "visits": 3,
                        "extra": {"said": ["fear", "of needles"]}}}


def test_undeclared_custom_properties_are_sealed_and_open_again() -> None:
    keys = InMemoryKeyStore(WRAP)
    sealer = Sealer(keys, PSEUDONYMS.key, POLICY)
    stored = sealer.seal_all([orjson.dumps(TOUCH)])[0]
    assert b"Smirnova" not in stored and b"needles" not in stored and b'"branch":"north"' in stored
    properties = orjson.loads(stored)["properties"]
    assert all(properties[name].startswith("enc1:") for name in ("note", "visits", "extra"))
    assert sealer.unseal(orjson.loads(stored)) == TOUCH


def test_forgetting_the_primary_key_drops_the_sealed_properties() -> None:
    keys = InMemoryKeyStore(WRAP)
    sealer = Sealer(keys, PSEUDONYMS.key, POLICY)
    stored = orjson.loads(sealer.seal_all([orjson.dumps(TOUCH)])[0])
    keys.destroy([PSEUDONYMS.key("customer_id", "pat-991"), PSEUDONYMS.key("phone", "+79165551234")])
    sealer.refresh()
    opened = sealer.unseal(stored)
    assert opened["erased"] and opened["properties"] == {"branch": "north"} and opened["customer"] == {}


def test_built_in_touches_keep_their_rules() -> None:
    sealer = Sealer(InMemoryKeyStore(WRAP), PSEUDONYMS.key, POLICY)
    review = {"event_id": "r", "type": "review", "occurred_at": "2025-05-01T10:00:00Z",
              "customer": {"customer_id": "pat-991"}, "properties": {"platform": "maps", "text": "Kind"}}
    stored = orjson.loads(sealer.seal_all([orjson.dumps(review)])[0])
    assert stored["properties"]["platform"] == "maps" and stored["properties"]["text"].startswith("enc1:")


def test_sealing_in_place_equals_sealing_field_by_field() -> None:
    """The ingest's fast path (the ``customer`` object replaced in the canonical bytes)
    stores what parsing and sealing every field stores, on the demo clinic and on
    identifiers that JSON escapes; touches with free text, custom and referral touches
    take the field-by-field path."""
    import itertools

    from journey.demo import generate_clinic
    from journey.ingest.pipeline import check

    odd = [{"event_id": f"odd-{n}", "type": "call", "occurred_at": "2025-05-01T10:00:00Z",
            "customer": {"customer_id": customer_id, "email": "o.k@example.ru"},
            "properties": {"direction": "inbound", "answered": True}}
           for n, customer_id in enumerate(['Пациент "7"', "a\\b", "tab\there", "🦷-1", "x/y"])]
    raws = [orjson.dumps(r) for r in itertools.chain(itertools.islice(generate_clinic(seed=3, patients=300), 1500), odd)]
    identifiers: list = []
    checked = check(raws, None, 1 << 20, identifiers=identifiers)
    assert not checked.rejected and len(identifiers) == len(checked.index) == len(raws)
    contents = checked.content.items()
    fast_sealer = Sealer(InMemoryKeyStore(WRAP), PSEUDONYMS.key, POLICY)
    in_place = 0
    splice = fast_sealer._splice

    def counted(touch: bytes, pairs: tuple) -> bytes | None:
        nonlocal in_place
        sealed = splice(touch, pairs)
        in_place += sealed is not None
        return sealed

    fast_sealer._splice = counted  # type: ignore[method-assign]
    fast = fast_sealer.seal_all(contents, identifiers)
    keys = fast_sealer.keys
    slow = Sealer(keys, PSEUDONYMS.key, POLICY).seal_all(contents)  # the same keys: the same ciphertexts
    assert [orjson.loads(f) for f in fast] == [orjson.loads(s) for s in slow]
    assert in_place > 0.8 * len(raws)  # most touches took the fast path
    for touch, stored in zip(odd, fast[-len(odd):]):  # no identifier left readable, escaped or not
        for value in touch["customer"].values():
            assert orjson.dumps(value)[1:-1] not in stored and value.encode() not in stored
    for stored, content in zip(fast, contents):
        assert fast_sealer.unseal(orjson.loads(stored)) == orjson.loads(content)
