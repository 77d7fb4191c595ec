"""The projection's own schema: the properties the derive reads, and migrations."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import orjson

import journey.projections
from journey.projections.projector import Projector
from journey.projections.schema import READ_PROPERTIES, SCHEMA_VERSION
from journey.store.event_store import EventStore
from tests.clinic import demo_store
from tests.projections.helpers import PSEUDONYMS, append, every_table, project, rows

_READ = re.compile(r"properties\s*(?:->>?|\.|,)\s*'\$?\.?(\w+)'|json_\w+\(\s*\w*\.?properties")


def properties_read(module: object) -> set[str]:
    """Every key the module's SQL (its string constants) reads out of ``properties``; a
    JSON function called on the whole column reads "*"."""
    found: set[str] = set()
    for value in vars(module).values():
        if isinstance(value, str):
            for match in _READ.finditer(value):
                found.add(match.group(1) or "*")
    return found


def test_the_derive_reads_only_the_properties_it_declares() -> None:
    """An incremental derive re-reads a customer's touches with ``read_properties`` in place
    of their properties: a key read but not declared would be NULL there and not in a
    rebuild."""
    declared = {name for names in READ_PROPERTIES.values() for name in names}
    modules = [importlib.import_module(f"journey.projections.{info.name}")
               for info in pkgutil.iter_modules(journey.projections.__path__)
               if info.name not in ("load", "schema")]  # these two build the base from the whole properties
    assert {module.__name__.rsplit(".", 1)[1] for module in modules} >= {"derive", "consent", "metrics", "failure"}
    read = set().union(*(properties_read(module) for module in modules))
    assert read, "the pattern found nothing: it no longer matches the derive's SQL"
    assert {"birth_year", "medium", "nps", "price_justified"} <= read
    assert read <= declared, f"read but not in READ_PROPERTIES: {sorted(read - declared)}"


def test_the_pattern_sees_a_key_read_and_a_whole_column_read() -> None:
    class Planted:
        SQL = "SELECT properties->>'fears', json_extract(t.properties, '$.x') FROM touches"

    assert properties_read(Planted) == {"fears", "*"}


def _late(patients: list[str]) -> list[dict]:
    at = "2031-01-01T10:00:00+00:00"
    return [
        {"event_id": "late-profile", "type": "profile", "occurred_at": at, "customer": {"customer_id": patients[0]},
         "properties": {"sex": "female", "city": "Tver", "birth_year": 1990, "fears": ["pain"]}},
        {"event_id": "late-review", "type": "review", "occurred_at": at, "customer": {"customer_id": patients[1]},
         "properties": {"platform": "survey", "nps": 3, "doctor": "Dr. Late", "price_justified": False}},
        {"event_id": "late-consent", "type": "consent", "occurred_at": at, "customer": {"customer_id": patients[2]},
         "properties": {"action": "withdrawn", "channel": "all", "purpose": "marketing"}},
        {"event_id": "late-message", "type": "message", "occurred_at": at, "channel": "sms",
         "customer": {"customer_id": patients[2]}, "properties": {"medium": "sms", "purpose": "promotion"}},
    ]


def _as_version_4(path: Path) -> None:
    """The file as schema version 4 left it: no ``read_properties``."""
    import duckdb

    con = duckdb.connect(str(path))
    con.execute("ALTER TABLE internal.touches DROP COLUMN read_properties")
    con.execute("UPDATE internal.meta SET value = '4' WHERE key = 'schema_version'")
    con.close()


def test_a_version_4_file_is_migrated_in_place_and_derives_on_incrementally(tmp_path: Path) -> None:
    store: EventStore = demo_store(tmp_path, patients=150)
    path = tmp_path / "old.duckdb"
    project(store, path).close()
    _as_version_4(path)
    patients = sorted({e.touch["customer"]["customer_id"] for _, e in store.read()
                       if e.touch.get("customer", {}).get("customer_id")})
    append(store, *_late(patients))

    migrated = Projector(store, path, PSEUDONYMS)
    assert rows(migrated.con, "SELECT value FROM internal.meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    migrated.catch_up()
    migrated.derive()
    assert migrated.last_derive is not None and migrated.last_derive.since is not None  # the kept tables kept
    rebuilt = project(store, tmp_path / "rebuilt.duckdb")
    assert every_table(migrated.con) == every_table(rebuilt.con)
    kept = "SELECT position, read_properties::VARCHAR FROM internal.touches ORDER BY position"
    assert rows(migrated.con, kept) == rows(rebuilt.con, kept)  # the migration computes what a load does
    review = orjson.loads(rows(rebuilt.con, "SELECT read_properties FROM internal.touches "
                                            "WHERE event_id = 'late-review'")[0][0])
    assert review["nps"] == 3 and review["doctor"] == "Dr. Late" and "platform" not in review
    assert rows(rebuilt.con, "SELECT count(*) FROM internal.touches WHERE type IN ('visit', 'call') "
                             "AND read_properties IS NOT NULL") == [(0,)]
    migrated.close()
    rebuilt.close()
