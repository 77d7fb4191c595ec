"""Identity resolution: retroactive, never merging two customer_ids, undoable."""

from __future__ import annotations

from journey.domain.identity import resolve_identities

AD = ("anonymous_id", "click-1")
PHONE = ("phone", "+79161234567")
EMAIL = ("email", "anna@example.ru")


def c(customer_id: str) -> tuple[str, str]:
    return ("customer_id", customer_id)


def test_ad_click_then_call_then_booking_is_one_patient_retroactively() -> None:
    result = resolve_identities([("touch", [AD]), ("touch", [AD, PHONE]), ("touch", [c("P-1"), PHONE])])
    assert result.resolve([AD]) == "P-1"
    assert result.resolve([PHONE]) == "P-1"
    assert result.customers == {"P-1"}


def test_before_the_booking_the_journey_is_named_after_its_first_identifier() -> None:
    result = resolve_identities([("touch", [AD]), ("touch", [AD, PHONE])])
    assert result.resolve([PHONE]) == "anonymous_id:click-1"


def test_canonical_id_of_a_touch_with_customer_id_is_that_id() -> None:
    result = resolve_identities([("touch", [c("P-1"), PHONE]), ("touch", [c("P-2"), PHONE])])
    assert result.resolve([c("P-2"), PHONE]) == "P-2"


def test_shared_phone_never_merges_two_customers_and_is_listed() -> None:
    parent, child = c("P-parent"), c("P-child")
    result = resolve_identities([("touch", [parent, PHONE]), ("touch", [child, PHONE]), ("touch", [PHONE])])
    assert result.resolve([parent]) == "P-parent"
    assert result.resolve([child]) == "P-child"
    assert result.resolve([PHONE]).startswith("ambiguous:")
    assert [(a.identifier, a.candidates) for a in result.ambiguities] == [(PHONE, ("P-child", "P-parent"))]


def test_identifier_nearer_to_one_customer_belongs_to_it_despite_shared_phone() -> None:
    parent, child = c("P-parent"), c("P-child")
    child_email = ("email", "kid@example.ru")
    result = resolve_identities(
        [("touch", [parent, PHONE]), ("touch", [child, PHONE]), ("touch", [child, child_email])]
    )
    assert result.resolve([child_email]) == "P-child"
    assert result.resolve([child_email, PHONE]) == "P-child"


def test_unlink_undoes_a_wrong_link() -> None:
    wrong = [("touch", [AD, PHONE]), ("touch", [c("P-1"), PHONE])]
    assert resolve_identities(wrong).resolve([AD]) == "P-1"
    undone = resolve_identities([*wrong, ("unlink", [AD, PHONE])])
    assert undone.resolve([AD]) == "anonymous_id:click-1"
    assert undone.resolve([PHONE]) == "P-1"


def test_a_link_after_an_unlink_links_again() -> None:
    result = resolve_identities(
        [("touch", [AD, PHONE]), ("unlink", [AD, PHONE]), ("link", [AD, PHONE]), ("touch", [c("P-1"), PHONE])]
    )
    assert result.resolve([AD]) == "P-1"


def test_explicit_link_merges_anonymous_history() -> None:
    result = resolve_identities([("touch", [EMAIL]), ("touch", [c("P-9")]), ("link", [c("P-9"), EMAIL])])
    assert result.resolve([EMAIL]) == "P-9"
