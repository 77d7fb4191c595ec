"""The key store contract: every adapter (memory, SQLite, PostgreSQL) passes it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from journey.crypto.keys import KeyStore, KeyWrap, Subject, new_key_id
from tests.conftest import make_keys
from tests.stores import WRAP


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def keys(request: pytest.FixtureRequest, tmp_path: Path) -> KeyStore:
    return make_keys(request.param, tmp_path, request)


def subject(n: int) -> Subject:
    return Subject(f"pseudonym-{n}", "phone", f"+7916000000{n}")


def test_a_key_is_made_once_and_found_again(keys: KeyStore) -> None:
    first = keys.keys_for([subject(1), subject(2)])
    again = keys.keys_for([subject(1)])
    assert again["pseudonym-1"] == first["pseudonym-1"]
    assert first["pseudonym-1"].key_id != first["pseudonym-2"].key_id
    assert keys.subjects([first["pseudonym-2"].key_id]) == {first["pseudonym-2"].key_id: "pseudonym-2"}
    assert keys.key_ids(["pseudonym-1", "unknown"]) == {"pseudonym-1": first["pseudonym-1"].key_id}


def test_contact_opens_the_sealed_identifier(keys: KeyStore) -> None:
    keys.keys_for([subject(3)])
    assert keys.contact(["pseudonym-3", "nobody"]) == {"pseudonym-3": ("phone", "+79160000003")}


def test_destroying_a_key_removes_it_for_good(keys: KeyStore) -> None:
    made = keys.keys_for([subject(4), subject(5)])
    before = keys.generation()
    assert keys.destroy(["pseudonym-4"]) == [made["pseudonym-4"].key_id]
    assert keys.generation() > before
    assert keys.keys([made["pseudonym-4"].key_id]) == {}
    assert keys.contact(["pseudonym-4"]) == {}
    assert set(keys.keys([made["pseudonym-5"].key_id])) == {made["pseudonym-5"].key_id}
    assert keys.keys_for([subject(4)])["pseudonym-4"].key_id != made["pseudonym-4"].key_id  # a new key


def test_keys_are_wrapped_with_the_master_key(keys: KeyStore) -> None:
    made = keys.keys_for([subject(6)])["pseudonym-6"]
    row = keys._select("key_id", [made.key_id])[0]
    assert made.secret not in bytes(row[3])
    with pytest.raises(Exception):
        KeyWrap(b"x" * 32).unwrap(made.key_id, bytes(row[3]))
    assert WRAP.unwrap(made.key_id, bytes(row[3])) == made.secret


def test_a_destroyed_key_leaves_no_bytes_in_the_sqlite_file(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    keys = make_keys("sqlite", tmp_path, request)
    made = keys.keys_for([subject(7)])["pseudonym-7"]
    wrapped = bytes(keys._select("key_id", [made.key_id])[0][3])
    keys.destroy(["pseudonym-7"])
    data = (tmp_path / "keys.sqlite").read_bytes()
    assert wrapped not in data and b"pseudonym-7" not in data


def test_an_entry_holds_the_identifier_sealed_with_its_own_key(keys: KeyStore) -> None:
    """What the ingest seals identifiers from without unwrapping (``entries_for``): the same
    key as ``keys_for``, and a ciphertext that key opens."""
    entry = keys.entries_for([subject(8)])["pseudonym-8"]
    key = keys.keys_for([subject(8)])["pseudonym-8"]
    assert (entry.key_id, entry.subject, entry.kind) == (key.key_id, "pseudonym-8", "phone")
    assert b"+79160000008" not in entry.sealed
    assert key.cipher.decrypt(entry.sealed, [b"phone"]) == b"+79160000008"
    assert keys.unwrap(entry).secret == key.secret


@given(st.integers(0, 2**48 - 2), st.integers(1, 2**20), st.binary(min_size=6, max_size=6),
       st.binary(min_size=6, max_size=6))
def test_key_ids_sort_by_the_time_they_were_made(millis: int, later: int, first: bytes, second: bytes) -> None:
    """New keys land at the end of the key-id index (a few pages per batch, not one a key)."""
    earlier, after = new_key_id(millis, first), new_key_id(min(millis + later, 2**48 - 1), second)
    assert earlier < after
    assert len(earlier) == 16 and earlier.isascii() and ":" not in earlier  # fits ``enc1:<key_id>:...``


def test_keys_made_later_have_later_ids(keys: KeyStore) -> None:
    first = keys.entries_for([subject(9)])["pseudonym-9"]
    time.sleep(0.002)
    second = keys.entries_for([subject(10)])["pseudonym-10"]
    assert first.key_id < second.key_id


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_two_workers_making_the_same_new_keys_at_once_agree_and_never_deadlock(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Two ingest workers meet the same new identifiers in opposite orders: each key is
    made once, both get it, and neither waits for the other in a cycle (PostgreSQL
    detected a deadlock on the subject index before inserts came in one order)."""
    import threading

    stores = [make_keys(kind, tmp_path, request) for _ in range(2)]
    for round_ in range(3):
        wanted = [Subject(f"p-{round_}-{n:05d}", "phone", f"+7916{round_}{n:06d}") for n in range(3000)]
        results: list[dict | BaseException] = [{}, {}]

        def make(index: int, subjects: list[Subject]) -> None:
            try:
                results[index] = stores[index].entries_for(subjects)
            except BaseException as error:  # noqa: BLE001 - the test reports it
                results[index] = error

        threads = [threading.Thread(target=make, args=(0, wanted)),
                   threading.Thread(target=make, args=(1, wanted[::-1]))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not any(isinstance(r, BaseException) for r in results), results
        first, second = results
        assert {p: e.key_id for p, e in first.items()} == {p: e.key_id for p, e in second.items()}
        assert len(first) == 3000
