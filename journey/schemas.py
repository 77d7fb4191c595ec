"""JSON Schema files of the wire format, generated from the pydantic models.

``schemas/`` is committed so producers in any language can validate before sending;
a test fails when the committed files drift from the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from journey.domain.touch import WIRE_VERSION, touch_adapter

__all__ = ["SCHEMA_FILES", "render_schemas", "stale_schemas", "write_schemas"]

SCHEMA_FILES = (f"touch.v{WIRE_VERSION}.schema.json",)


def _touch_schema() -> dict[str, Any]:
    schema = touch_adapter.json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://journey.invalid/schemas/touch.v{WIRE_VERSION}.schema.json",
        "title": f"journey touch, wire format v{WIRE_VERSION}",
        "description": (
            "One JSON object per touch. recorded_at is set by the engine: leave it out. "
            "Money amounts are decimal strings. Timestamps are RFC 3339 with an offset."
        ),
        **schema,
    }


def render_schemas() -> dict[str, str]:
    """File name -> file text, exactly as committed."""
    return {SCHEMA_FILES[0]: json.dumps(_touch_schema(), indent=2, sort_keys=True) + "\n"}


def stale_schemas(directory: Path) -> list[str]:
    """The schema files in ``directory`` that are missing or differ from the models."""
    return [name for name, text in render_schemas().items()
            if not (directory / name).exists() or (directory / name).read_text("utf-8") != text]


def write_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
