"""Identity resolved over a real event store, retroactively, with identity events."""

from __future__ import annotations

from journey.domain.touch import parse_touch
from journey.projections.identity import identity_map
from journey.store.event_store import EventStore, Submission
from tests.touches import raw, touch


def store_all(store: EventStore, *records: dict) -> None:
    store.append([Submission.of(parse_touch(raw(r))) for r in records])


def test_patient_journey_resolves_backwards_on_every_store(store: EventStore) -> None:
    store_all(
        store,
        touch("ad_click", "a", customer={"anonymous_id": "click-9"}),
        touch("call", "b", customer={"phone": "+79161234567", "anonymous_id": "click-9"}),
    )
    before = identity_map(store)
    assert before.resolve([("anonymous_id", "click-9")]) == "anonymous_id:click-9"
    store_all(store, touch("booking", "c", customer={"customer_id": "P-7", "phone": "+79161234567"}))
    after = identity_map(store)
    assert after.resolve([("anonymous_id", "click-9")]) == "P-7"
    assert identity_map(store, upto=2).resolve([("anonymous_id", "click-9")]) == "anonymous_id:click-9"


def test_shared_phone_is_listed_and_an_unlink_event_undoes_a_link(store: EventStore) -> None:
    store_all(
        store,
        touch("booking", "p", customer={"customer_id": "P-parent", "phone": "+79160000001"}),
        touch("booking", "k", customer={"customer_id": "P-child", "phone": "+79160000001"}),
        touch("identity_link", "l", customer={"customer_id": "P-child", "email": "kid@example.ru"}),
    )
    result = identity_map(store)
    assert [a.candidates for a in result.ambiguities] == [("P-child", "P-parent")]
    assert result.resolve([("email", "kid@example.ru")]) == "P-child"
    store_all(store, touch("identity_unlink", "u", customer={"customer_id": "P-child", "email": "kid@example.ru"}))
    assert identity_map(store).resolve([("email", "kid@example.ru")]) == "email:kid@example.ru"
