"""The committed JSON Schemas match the models, and agree with the validator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from journey.domain.touch import TOUCH_TYPES
from journey.schemas import render_schemas
from tests.touches import touch

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


@pytest.mark.parametrize("name", sorted(render_schemas()))
def test_committed_schema_matches_the_models(name: str) -> None:
    committed = (SCHEMAS / name).read_text("utf-8")
    assert committed == render_schemas()[name], "schemas/ drifted: run `journey schemas`"


def test_schema_lists_every_touch_type() -> None:
    schema = json.loads(render_schemas()["touch.v1.schema.json"])
    assert sorted(schema["discriminator"]["mapping"]) == sorted(TOUCH_TYPES)


def test_schema_accepts_the_valid_examples_and_rejects_typos() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(render_schemas()["touch.v1.schema.json"])
    validator = jsonschema.Draft202012Validator(schema)
    for type_ in TOUCH_TYPES:
        assert not list(validator.iter_errors(touch(type_))), type_
    bad = touch("call")
    bad["properties"]["answerd"] = True
    assert list(validator.iter_errors(bad))
