"""Calendar periods in a clinic's time zone, and which touches an analysis counts.

A period is a day, a week (starting Monday, or Sunday) or a month of local time in
``timezone`` (default UTC). A moment belongs to the period holding its local time.
An *event* is a touch type or custom activity (``visit``, ``Register Request``), a
journey stage (``stage:booking``), or ``any`` touch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb

from journey.errors import InputError

__all__ = ["BREAKDOWNS", "PERIODS", "WEEK_STARTS", "breakdown_sql", "Calendar", "EventMatch", "parse_event"]

Period = Literal["day", "week", "month"]
PERIODS: tuple[str, ...] = ("day", "week", "month")
WEEK_STARTS: tuple[str, ...] = ("monday", "sunday")
BREAKDOWNS: tuple[str, ...] = ("first_channel", "first_visit_doctor")
"""Columns of ``customers`` retention and lifecycle can be broken down by."""
_ZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*")


@dataclass(frozen=True)
class EventMatch:
    """Which touches count: ``kind`` ``activity`` or ``stage`` with ``name``, or ``any``."""

    kind: Literal["activity", "stage", "any"]
    name: str = ""

    def condition(self, parameter: str) -> tuple[str, dict[str, str]]:
        """A SQL condition on ``touchpoints`` and its bound value, named ``parameter``."""
        if self.kind == "any":
            return "true", {}
        return f"{self.kind} = ${parameter}", {parameter: self.name}

    @property
    def label(self) -> str:
        return {"any": "any", "stage": f"stage:{self.name}"}.get(self.kind, self.name)


def parse_event(text: str, option: str = "--event") -> EventMatch:
    """``visit``, ``Register Request``, ``stage:booking`` or ``any``."""
    text = text.strip()
    if not text:
        raise InputError(f"{option} is empty: give a touch type, an activity, stage:NAME or any")
    if text == "any":
        return EventMatch("any")
    if text.startswith("stage:"):
        name = text.removeprefix("stage:").strip()
        if not name:
            raise InputError(f"{option} {text!r}: name the stage, e.g. stage:booking")
        return EventMatch("stage", name)
    return EventMatch("activity", text)


@dataclass(frozen=True)
class Calendar:
    period: Period = "week"
    timezone: str = "UTC"
    week_start: str = "monday"

    def __post_init__(self) -> None:
        if self.period not in PERIODS:
            raise InputError(f"--period {self.period!r}: use one of {', '.join(PERIODS)}")
        if self.week_start not in WEEK_STARTS:
            raise InputError(f"--week-start {self.week_start!r}: use monday or sunday")
        try:
            if not _ZONE.fullmatch(self.timezone):
                raise ValueError(self.timezone)
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError(f"--timezone {self.timezone!r} is not an IANA time zone such as "
                             "Europe/Moscow") from None

    def start_sql(self, moment: str) -> str:
        """SQL: the start (a DATE) of the period holding the TIMESTAMPTZ expression ``moment``."""
        local = f"CAST(timezone('{self.timezone}', {moment}) AS DATE)"
        if self.period == "week" and self.week_start == "sunday":
            return f"CAST(date_trunc('week', {local} + 1) AS DATE) - 1"
        return f"CAST(date_trunc('{self.period}', {local}) AS DATE)"

    def index_sql(self, start: str, other: str) -> str:
        """SQL: how many periods the period starting ``other`` is after the one starting ``start``."""
        if self.period == "month":
            return f"date_diff('month', {start}, {other})"
        days = f"date_diff('day', {start}, {other})"
        return days if self.period == "day" else f"({days} // 7)"

    def step_sql(self) -> str:
        return {"day": "INTERVAL 1 DAY", "week": "INTERVAL 7 DAY", "month": "INTERVAL 1 MONTH"}[self.period]

    def start_of(self, con: duckdb.DuckDBPyConnection, moment: datetime) -> date:
        """The start of the period holding ``moment``."""
        row = con.execute(f"SELECT {self.start_sql('$m::TIMESTAMPTZ')}", {"m": moment}).fetchone()
        return row[0]  # type: ignore[index]

    def shift(self, con: duckdb.DuckDBPyConnection, start: date, periods: int) -> date:
        """The period ``periods`` after (or before, when negative) the one starting ``start``."""
        row = con.execute(f"SELECT CAST($s::DATE + $n * {self.step_sql()} AS DATE)",
                          {"s": start, "n": periods}).fetchone()
        return row[0]  # type: ignore[index]

    def starts(self, con: duckdb.DuckDBPyConnection, first: date, last: date) -> list[date]:
        """The start of every period from the one starting ``first`` to the one starting ``last``."""
        rows = con.execute(f"SELECT CAST(unnest(generate_series($first::DATE, $last::DATE, {self.step_sql()})) "
                           "AS DATE)", {"first": first, "last": last}).fetchall()
        return [r[0] for r in rows]


def breakdown_sql(by: str | None) -> tuple[str, str]:
    """SQL for a breakdown of ``touchpoints t``: the group expression and the join it needs."""
    if by is None:
        return "'all'", ""
    column = BREAKDOWNS[BREAKDOWNS.index(by)]  # the SQL name is ours
    return f"coalesce(cu.{column}, '(none)')", "LEFT JOIN customers cu USING (customer_id)"
