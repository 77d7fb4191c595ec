"""Which journeys a map shows: a frozen filter compiled to parameterised SQL.

Filters select whole customers' journeys, never single touches: cutting touches out
of a journey would invent transitions that never happened (A -> C when B was hidden).
User strings reach SQL only as bound parameters; property and segment names are
checked against ``^[a-z_][a-z0-9_]*$`` (segments also against the ``customers``
columns) and quoted.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from journey.errors import InputError

__all__ = ["SEGMENT_COLUMNS", "JourneyFilter", "compile_customers", "identifier", "parse_pairs"]

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")

SEGMENT_COLUMNS = frozenset({
    "first_channel", "first_activity", "current_stage", "first_visit_doctor", "sex", "city",
    "district", "income", "social_status", "family", "education", "problem",
})
"""``customers`` columns a segment may name (the portrait and the journey's origin)."""


def identifier(name: str) -> str:
    """``name`` quoted for SQL, after checking it is a plain lower-case identifier."""
    if not _IDENTIFIER.fullmatch(name):
        raise InputError(f"{name!r} is not a valid name: use lower-case letters, digits and _")
    return f'"{name}"'


def parse_pairs(pairs: tuple[str, ...] | list[str], what: str) -> dict[str, str]:
    """``["name=value", ...]`` from the command line as a dict; names are checked."""
    result: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise InputError(f"{what} {pair!r} must look like name=value")
        identifier(name.strip())
        result[name.strip()] = value
    return result


class JourneyFilter(BaseModel):
    """The journeys to map. Every field narrows the set; empty fields do nothing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    since: datetime | None = Field(None, description="first touch at or after this moment")
    until: datetime | None = Field(None, description="first touch before this moment")
    channel: tuple[str, ...] = Field((), description="some touch came through one of these channels")
    first_channel: tuple[str, ...] = Field((), description="the journey began on one of these channels")
    doctor: tuple[str, ...] = Field((), description="some touch names one of these doctors")
    administrator: tuple[str, ...] = Field((), description="some touch names one of these administrators")
    segment: dict[str, str] = Field(default_factory=dict, description="customers column = value")
    properties: dict[str, str] = Field(default_factory=dict, description="some touch has property = value")
    top_variants: int | None = Field(None, ge=1, description="keep the N most common journeys")
    min_edge_share: float = Field(0.0, ge=0.0, le=1.0,
                                  description="hide edges taken by less than this share of the source's customers")

    @field_validator("segment")
    @classmethod
    def _segment_columns(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            identifier(name)
            if name not in SEGMENT_COLUMNS:
                raise ValueError(f"segment {name!r} is not one of {', '.join(sorted(SEGMENT_COLUMNS))}")
        return value

    @field_validator("properties")
    @classmethod
    def _property_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            identifier(name)
        return value

    @property
    def keeps_everyone(self) -> bool:
        """Every journey stays (``min_edge_share`` only hides edges afterwards), so the
        unfiltered aggregates the projector keeps are the answer."""
        return self.model_copy(update={"min_edge_share": 0.0}) == JourneyFilter()


def compile_customers(f: JourneyFilter) -> tuple[str, list[Any]]:
    """A ``SELECT customer_id`` over the projection with its bound parameters (the
    journey-shape options, ``top_variants`` and ``min_edge_share``, act in the map)."""
    where: list[str] = ["c.customer_id IS NOT NULL"]
    params: list[Any] = []
    if f.since is not None:
        where.append("c.first_touch_at >= ?")
        params.append(f.since)
    if f.until is not None:
        where.append("c.first_touch_at < ?")
        params.append(f.until)
    if f.first_channel:
        where.append("list_contains(?::VARCHAR[], c.first_channel)")
        params.append(list(f.first_channel))
    for name, value in sorted(f.segment.items()):
        where.append(f"c.{identifier(name)} = ?")
        params.append(value)
    for column in ("channel", "doctor", "administrator"):
        values = getattr(f, column)
        if values:
            where.append(f"c.customer_id IN (SELECT customer_id FROM touchpoints "
                         f"WHERE list_contains(?::VARCHAR[], {column}))")
            params.append(list(values))
    for name, value in sorted(f.properties.items()):
        where.append("c.customer_id IN (SELECT customer_id FROM touchpoints "
                     "WHERE json_extract_string(properties, ?) = ?)")
        params.extend([f"$.{name}", value])
    return "SELECT c.customer_id FROM customers c WHERE " + " AND ".join(where), params
