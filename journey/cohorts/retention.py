"""Retention with PostHog's semantics (its ``RetentionQuery``): of the customers who did
the start event in a period (a cohort), how many did the return event in each later period.

- Cohorts are the periods from the one holding ``start`` to the one holding ``end``.
- *Recurring* (the default): a customer is in every cohort in which they did the start
  event. *First time*: only in the period of their first-ever start event (over all the
  data, so someone who started before ``start`` is in no cohort).
- ``retained[0]`` is the cohort's size; ``retained[k]`` counts its customers who did the
  return event in the k-th period after the cohort's. Returns are counted up to the end
  of the period holding ``end``; entries past it are 0 (the period has not happened).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb

from journey.cohorts.periods import BREAKDOWNS, Calendar, EventMatch, breakdown_sql
from journey.errors import InputError
from journey.projections.publish import data_now

__all__ = ["Cohort", "Retention", "retention"]

MAX_INTERVALS = 400


@dataclass(frozen=True)
class Cohort:
    start: date
    size: int
    retained: list[int]


@dataclass(frozen=True)
class Retention:
    period: str
    cohorts: list[Cohort] = field(default_factory=list)
    breakdown: dict[str, list[Cohort]] | None = None
    """Per value of the breakdown (``"(none)"`` for customers without one)."""

    def to_dict(self) -> dict[str, object]:
        facts: dict[str, object] = {"period": self.period, "cohorts": _cohorts(self.cohorts)}
        if self.breakdown is not None:
            facts["breakdown"] = {value: _cohorts(cohorts) for value, cohorts in self.breakdown.items()}
        return facts


def _cohorts(cohorts: list[Cohort]) -> list[dict[str, object]]:
    return [{"start": c.start.isoformat(), "size": c.size, "retained": c.retained} for c in cohorts]


def retention(con: duckdb.DuckDBPyConnection, start_event: EventMatch, return_event: EventMatch,
              calendar: Calendar, intervals: int = 11, *, start: datetime | None = None,
              end: datetime | None = None, first_time: bool = False, by: str | None = None) -> Retention:
    """Retention on ``touchpoints``. ``end`` defaults to the latest touch in the data and
    ``start`` to ``intervals - 1`` periods before it. ``by`` breaks it down by a column of
    ``customers`` (one of ``BREAKDOWNS``)."""
    if by is not None and by not in BREAKDOWNS:
        raise InputError(f"--by {by!r}: use one of {', '.join(BREAKDOWNS)}")
    if not 1 <= intervals <= MAX_INTERVALS:
        raise InputError(f"--intervals {intervals}: use 1..{MAX_INTERVALS}")
    last = calendar.start_of(con, data_now(con, end))
    first = calendar.start_of(con, start) if start is not None else calendar.shift(con, last, -(intervals - 1))
    if first > last:
        raise InputError("--from is after --to: the first cohort would come after the last")
    starts = ("SELECT customer_id, any_value(grp) AS grp, min(period) FILTER (WHERE is_start) AS cohort "
              "FROM touches GROUP BY customer_id" if first_time
              else "SELECT DISTINCT customer_id, grp, period AS cohort FROM touches WHERE is_start")
    group, join = breakdown_sql(by)
    is_start, start_name = start_event.condition("start_name")
    is_return, return_name = return_event.condition("return_name")
    rows = con.execute(f"""
        WITH touches AS (
            SELECT t.customer_id, {calendar.start_sql('t.occurred_at')} AS period,
                   {is_start} AS is_start, {is_return} AS is_return, {group} AS grp
            FROM touchpoints t {join} WHERE t.customer_id IS NOT NULL
        ), cohorts AS (
            SELECT * FROM ({starts}) WHERE cohort BETWEEN $first AND $last
        ), returns AS (
            SELECT DISTINCT customer_id, period FROM touches WHERE is_return AND period > $first AND period <= $last
        )
        SELECT grp, cohort, 0 AS k, count(*) FROM cohorts GROUP BY ALL
        UNION ALL
        SELECT c.grp, c.cohort, {calendar.index_sql('c.cohort', 'r.period')} AS k, count(DISTINCT c.customer_id)
        FROM cohorts c JOIN returns r ON r.customer_id = c.customer_id AND r.period > c.cohort
        GROUP BY ALL
    """, {**start_name, **return_name, "first": first, "last": last}).fetchall()
    starts_of = calendar.starts(con, first, last)
    counts: dict[tuple[str | None, date, int], int] = {}
    for grp, cohort, k, n in rows:
        counts[(grp, cohort, k)] = n
        counts[(None, cohort, k)] = counts.get((None, cohort, k), 0) + n

    def table(grp: str | None) -> list[Cohort]:
        return [Cohort(cohort, counts.get((grp, cohort, 0), 0),
                       [counts.get((grp, cohort, k), 0) for k in range(intervals)]) for cohort in starts_of]

    groups = sorted({grp for grp, _cohort, _k, _n in rows})
    return Retention(calendar.period, table(None), {g: table(g) for g in groups} if by is not None else None)

