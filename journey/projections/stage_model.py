"""The declarative stage model: which touches put a customer in which journey stage.

A clinic edits a TOML file (``JOURNEY_STAGE_MODEL``; the default ships as
``default_stages.toml``) listing its stages in journey order. Each stage has match
rules and an SLA (the expected time to reach a later stage). The file is validated
by frozen pydantic models and compiled to one SQL ``CASE`` expression in which every
value the user wrote is a bound parameter and every column is from a whitelist:
nothing from the file is pasted into SQL.

A touch takes the stage of the first rule that matches it, stages in file order and
rules in file order within a stage. Touches no rule matches have no stage.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from journey.errors import InputError

__all__ = [
    "CONDITION_COLUMNS",
    "OWNER_DIMENSIONS",
    "CompiledStages",
    "Rule",
    "Stage",
    "StageModel",
    "compile_stages",
    "default_stage_model",
    "load_stage_model",
    "parse_duration",
]

NAME = r"^[a-z_][a-z0-9_]*$"
CONDITION_COLUMNS = ("direction", "purpose", "answered", "outcome", "status", "channel", "source",
                     "doctor", "administrator", "branch", "campaign", "rating")
"""``touchpoints`` columns a rule may test (the SQL names come from this list, never from the file)."""

OWNER_DIMENSIONS = ("administrator", "doctor", "branch", "channel")
"""Who may own a step: points of failure compare the values of these ``touchpoints`` columns."""
DEFAULT_OWNERS = ("administrator", "doctor", "branch")
"""The owners of a stage that names none: channel quality is acquisition, not blame."""

_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d|w)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

Scalar = str | bool | int


def parse_duration(text: str) -> int:
    """``90s``, ``30m``, ``12h``, ``14d``, ``2w`` -> seconds (an ``InputError`` otherwise)."""
    match = _DURATION.match(text.strip())
    if not match:
        raise InputError(f"{text!r} is not a duration such as 14d, 12h, 30m, 90s or 2w")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class Rule(BaseModel):
    """One way into a stage: a touch of one of ``types`` (or a custom touch with one of
    ``activities``) that meets every condition given."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    types: tuple[Annotated[str, Field(pattern=NAME)], ...] = ()
    activities: tuple[Annotated[str, Field(min_length=1, max_length=200)], ...] = ()
    where: dict[str, Scalar | tuple[Scalar, ...]] = Field(default_factory=dict)
    """Column -> value, or a list of accepted values (columns from ``CONDITION_COLUMNS``)."""
    nth: Annotated[int, Field(ge=1)] | None = None
    """The touch is the customer's nth touch of its type (1: the first visit)."""
    min_days_after_previous: Annotated[int, Field(ge=0)] | None = None
    """At least this many days after the customer's previous touch of the same type."""
    max_days_after_previous: Annotated[int, Field(ge=1)] | None = None
    """Less than this many days after the customer's previous touch of the same type."""

    @field_validator("where")
    @classmethod
    def _known_columns(cls, where: dict[str, Any]) -> dict[str, Any]:
        for column, value in where.items():
            if column not in CONDITION_COLUMNS:
                raise ValueError(f"unknown condition column {column!r}; use one of {', '.join(CONDITION_COLUMNS)}")
            if isinstance(value, tuple) and not value:
                raise ValueError(f"condition {column!r} has an empty list of values")
        return where

    @model_validator(mode="after")
    def _matches_something(self) -> Rule:
        if not self.types and not self.activities:
            raise ValueError("a rule needs `types` or `activities`")
        return self


class Stage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(pattern=NAME, max_length=64)]
    sla: str | None = None
    """Expected time to reach a later stage after entering this one (e.g. ``14d``)."""
    rules: tuple[Rule, ...] = Field(min_length=1, alias="rule")
    owners: tuple[str, ...] = DEFAULT_OWNERS
    """The dimensions whose values own moving on from this stage (points of failure blame only them)."""

    @field_validator("owners")
    @classmethod
    def _known_owners(cls, owners: tuple[str, ...]) -> tuple[str, ...]:
        for owner in owners:
            if owner not in OWNER_DIMENSIONS:
                raise ValueError(f"unknown owner {owner!r}; use some of {', '.join(OWNER_DIMENSIONS)}")
        return owners

    @field_validator("sla")
    @classmethod
    def _duration(cls, sla: str | None) -> str | None:
        if sla is not None:
            try:
                parse_duration(sla)
            except InputError as error:
                raise ValueError(str(error)) from None
        return sla

    @property
    def sla_seconds(self) -> int | None:
        return None if self.sla is None else parse_duration(self.sla)


class StageModel(BaseModel):
    """Stages in journey order (at least two, names unique)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stages: tuple[Stage, ...] = Field(min_length=2, alias="stage")

    @model_validator(mode="after")
    def _unique(self) -> StageModel:
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names repeat: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages)


def load_stage_model(path: Path | str | None = None) -> StageModel:
    """Read and validate a stage model file (``None``: the default model)."""
    if path is None:
        return default_stage_model()
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as error:
        raise InputError(f"cannot read the stage model {path}: {error.strerror or error}") from None
    return _parse(text, str(path))


def default_stage_model() -> StageModel:
    text = resources.files("journey.projections").joinpath("default_stages.toml").read_text("utf-8")
    return _parse(text, "the default stage model")


def _parse(text: str, where: str) -> StageModel:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"{where} is not valid TOML: {error}") from None
    try:
        return StageModel.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        raise InputError(f"{where}: {location}: {first['msg']} ({error.error_count()} problem(s))") from None


class CompiledStages(BaseModel):
    """A stage ``CASE`` expression and its bound parameters (named ``$stage_N``)."""

    model_config = ConfigDict(frozen=True)

    sql: str
    parameters: dict[str, Any]


def compile_stages(model: StageModel, t: str = "t") -> CompiledStages:
    """The SQL expression giving a touch's stage over ``t`` (which needs ``type_no``,
    the touch's number among the customer's touches of its type, and ``prev_type_at``,
    the time of the previous one). ``t`` is the caller's alias, never user input."""
    parameters: dict[str, Any] = {}

    def bind(value: Any) -> str:
        name = f"stage_{len(parameters)}"
        parameters[name] = value
        return f"${name}"

    branches = []
    for stage in model.stages:
        for rule in stage.rules:
            branches.append(f"WHEN {_rule_sql(rule, t, bind)} THEN {bind(stage.name)}")
    return CompiledStages(sql="CASE " + " ".join(branches) + " ELSE NULL END", parameters=parameters)


def _rule_sql(rule: Rule, t: str, bind: Any) -> str:
    kinds = []
    if rule.types:
        kinds.append(f"{t}.type IN ({', '.join(bind(v) for v in rule.types)})")
    if rule.activities:
        kinds.append(f"({t}.type = 'custom' AND {t}.activity IN ({', '.join(bind(v) for v in rule.activities)}))")
    parts = ["(" + " OR ".join(kinds) + ")"]
    for column, value in rule.where.items():
        name = CONDITION_COLUMNS[CONDITION_COLUMNS.index(column)]  # the SQL name is ours
        values = value if isinstance(value, tuple) else (value,)
        parts.append(f"{t}.{name} IN ({', '.join(bind(v) for v in values)})")
    if rule.nth is not None:
        parts.append(f"{t}.type_no = {bind(rule.nth)}")
    if rule.min_days_after_previous is not None:
        parts.append(f"{t}.occurred_at - {t}.prev_type_at >= to_days(CAST({bind(rule.min_days_after_previous)} AS INTEGER))")
    if rule.max_days_after_previous is not None:
        parts.append(f"{t}.occurred_at - {t}.prev_type_at < to_days(CAST({bind(rule.max_days_after_previous)} AS INTEGER))")
    return "(" + " AND ".join(parts) + ")"
