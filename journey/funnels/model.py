"""What a funnel question is and what its answer holds (the Python API and ``--json``).

Requests are validated pydantic models: step names reach SQL only as bound
parameters, breakdown properties only from a whitelist of column names.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from journey.errors import InputError

__all__ = [
    "BREAKDOWN_COLUMNS",
    "Breakdown",
    "Exclusion",
    "FunnelRequest",
    "FunnelResult",
    "HistogramBucket",
    "Step",
    "StepResult",
    "parse_exclusion",
    "parse_step",
]

BREAKDOWN_COLUMNS = ("channel", "source", "doctor", "administrator", "branch", "campaign", "direction",
                     "purpose", "outcome", "status", "type", "activity", "stage")
"""``touchpoints`` columns a funnel may be broken down by."""

MAX_STEPS = 32


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Step(_Frozen):
    """A funnel step: a touch type or custom activity (``activity``) or a journey stage."""

    kind: Literal["activity", "stage"] = "activity"
    name: Annotated[str, Field(min_length=1, max_length=200)]

    @property
    def label(self) -> str:
        return self.name if self.kind == "activity" else f"stage:{self.name}"


class Exclusion(_Frozen):
    """Customers doing ``step`` after step ``after`` and before step ``before`` (0-based)
    of the attempt that counts are removed from the funnel, not counted as dropped."""

    step: Step
    after: Annotated[int, Field(ge=0)]
    before: Annotated[int, Field(ge=1)]


class Breakdown(_Frozen):
    """Split the funnel by a property: the customer's first or last non-empty value over
    all touches, or the value on a named step (0-based) of the attempt that counts."""

    column: str
    touch: Literal["first", "last", "step"] = "first"
    step: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _known(self) -> Breakdown:
        if self.column not in BREAKDOWN_COLUMNS:
            raise ValueError(f"cannot break down by {self.column!r}; use one of {', '.join(BREAKDOWN_COLUMNS)}")
        return self


class FunnelRequest(_Frozen):
    steps: tuple[Step, ...] = Field(min_length=2, max_length=MAX_STEPS)
    window_seconds: Annotated[int, Field(ge=0)]
    mode: Literal["ordered", "strict", "unordered"] = "ordered"
    exclusions: tuple[Exclusion, ...] = ()
    breakdown: Breakdown | None = None

    @model_validator(mode="after")
    def _indices(self) -> FunnelRequest:
        for exclusion in self.exclusions:
            if not exclusion.after < exclusion.before < len(self.steps):
                raise ValueError(f"exclusion {exclusion.step.label}:{exclusion.after}-{exclusion.before} needs "
                                 f"0 <= from < to <= {len(self.steps) - 1} (steps are numbered from 0)")
        if self.breakdown and self.breakdown.touch == "step" and self.breakdown.step >= len(self.steps):
            raise ValueError(f"breakdown step {self.breakdown.step} is not a step (0..{len(self.steps) - 1})")
        return self


class HistogramBucket(_Frozen):
    up_to_seconds: int | None
    """Upper bound (inclusive); None for the last, open bucket."""
    customers: int


class StepResult(_Frozen):
    index: int
    name: str
    count: int
    """Customers who reached this step (at their deepest attempt)."""
    converted: int | None
    """Of them, who reached the next step (None for the last step)."""
    dropped: int
    conversion_from_previous: float | None
    conversion_from_first: float | None
    mean_seconds_to_convert: float | None
    """From the previous step to this one, for customers who reached this one."""
    median_seconds_to_convert: float | None


class FunnelResult(_Frozen):
    mode: str
    window_seconds: int
    steps: tuple[StepResult, ...]
    excluded: int
    """Customers removed by exclusion steps."""
    histogram: tuple[HistogramBucket, ...]
    """Time from the first step to the last, for customers who completed the funnel."""
    breakdown: dict[str, tuple[StepResult, ...]] | None = None
    """Per breakdown value (``"(none)"`` for customers without one)."""


def parse_step(text: str) -> Step:
    """``call``, ``Register Request`` (an activity) or ``stage:booking``."""
    text = text.strip()
    if not text:
        raise InputError("a funnel step is empty (steps are separated by commas)")
    if text.startswith("stage:"):
        return Step(kind="stage", name=text.removeprefix("stage:"))
    return Step(name=text)


_EXCLUSION = re.compile(r"^(?P<step>.+):(?P<after>\d+)-(?P<before>\d+)$")


def parse_exclusion(text: str) -> Exclusion:
    """``no_show:1-2``: a ``no_show`` between step 1 and step 2 (0-based) excludes."""
    match = _EXCLUSION.match(text.strip())
    if not match:
        raise InputError(f"--exclude {text!r} is not STEP:FROM-TO, e.g. no_show:1-2 (steps numbered from 0)")
    return Exclusion(step=parse_step(match["step"]), after=int(match["after"]), before=int(match["before"]))
