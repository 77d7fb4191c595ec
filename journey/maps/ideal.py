"""The ideal journey: a small declarative file a clinic manager edits (TOML).

It says what *should* happen: the steps in order (with allowed skips) and the deadlines
between touches ("call back within 15 minutes of a missed call"). ``journey.maps.deviations``
compares the real journeys with it. The models are frozen and forbid unknown keys, so a
typo in the file is an error with its location, not a silently ignored rule.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from journey.errors import InputError

__all__ = ["DEFAULT_MODEL", "Deadline", "IdealJourney", "Matcher", "Step", "load_ideal", "parse_duration"]

DEFAULT_MODEL = "ideal_clinic.toml"
_NAME = r"^[a-z_][a-z0-9_]*$"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """``"15m"``, ``"48h"``, ``"1d"`` in seconds."""
    match = _DURATION.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 15m, 48h or 1d")
    return float(match.group(1)) * _UNITS[match.group(2)]


class Matcher(BaseModel):
    """Touches of one of ``activities`` whose fields equal ``where``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str = ""
    activities: tuple[str, ...] = Field(min_length=1)
    where: dict[str, str | bool | int] = Field(default_factory=dict)

    @field_validator("where")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not re.fullmatch(_NAME, name):
                raise ValueError(f"{name!r} is not a field name (lower-case letters, digits, _)")
        return value


class Step(Matcher):
    """One step of the ideal path. ``after``: the steps whose occurrence makes this one
    expected (default: the step before it); ``optional``: an allowed skip."""

    id: str = Field(pattern=_NAME)
    optional: bool = False
    after: tuple[str, ...] | None = None


class Deadline(BaseModel):
    """From each ``from`` touch (a step: its first occurrence; an event: every one) to the
    next ``to`` touch: at most ``within``, or at least ``at_least``."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    id: str = Field(pattern=_NAME)
    label: str
    from_: str = Field(alias="from")
    to: str
    within: str | None = None
    at_least: str | None = None
    owner: str = ""

    @model_validator(mode="after")
    def _one_bound(self) -> Deadline:
        if (self.within is None) == (self.at_least is None):
            raise ValueError(f"deadline {self.id!r} needs exactly one of within / at_least")
        parse_duration(self.within or self.at_least or "")
        return self

    @property
    def seconds(self) -> float:
        return parse_duration(self.within or self.at_least or "")


class IdealJourney(BaseModel):
    """The whole file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    steps: tuple[Step, ...] = Field(min_length=1)
    events: dict[str, Matcher] = Field(default_factory=dict)
    deadlines: tuple[Deadline, ...] = ()

    @model_validator(mode="after")
    def _references(self) -> IdealJourney:
        ids = [s.id for s in self.steps]
        if len(set(ids)) != len(ids):
            raise ValueError("step ids must be unique")
        for name in self.events:
            if not re.fullmatch(_NAME, name) or name in ids:
                raise ValueError(f"event {name!r} must be a unique lower-case name")
        for step in self.steps:
            unknown = set(step.after or ()) - set(ids)
            if unknown:
                raise ValueError(f"step {step.id!r}: after names unknown steps {sorted(unknown)}")
        for deadline in self.deadlines:
            for end in (deadline.from_, deadline.to):
                if end not in ids and end not in self.events:
                    raise ValueError(f"deadline {deadline.id!r}: {end!r} is neither a step nor an event")
        return self

    def expected_after(self, index: int) -> tuple[str, ...]:
        """The steps whose occurrence makes step ``index`` expected (empty: always expected)."""
        step = self.steps[index]
        if step.after is not None:
            return step.after
        return (self.steps[index - 1].id,) if index else ()

    def matchers(self) -> dict[str, Matcher]:
        """Every named matcher: the steps and the events."""
        return {s.id: s for s in self.steps} | dict(self.events)


def load_ideal(path: str | Path | None = None) -> IdealJourney:
    """Read and validate a model file; ``None`` is the default clinic journey shipped here."""
    if path is None:
        text = resources.files("journey.maps.models").joinpath(DEFAULT_MODEL).read_text("utf-8")
        where = f"the default model {DEFAULT_MODEL}"
    else:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as error:
            raise InputError(f"cannot read the ideal journey {path}: {error.strerror}") from None
        where = str(path)
    try:
        return IdealJourney.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"{where} is not valid TOML: {error}") from None
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in error.errors())
        raise InputError(f"{where} is not a valid ideal journey: {problems}") from None
