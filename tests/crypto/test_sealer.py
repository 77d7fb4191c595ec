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
