"""Lifecycle with PostHog's semantics (its ``LifecycleQuery``): per period, the customers
who did the event, by where they come from, and those who stopped.

- **new**: active in the period, and their first touch ever (of any kind) is in it;
- **returning**: active in the period and in the one before;
- **resurrecting**: active in the period, not in the one before, and not new;
- **dormant**: active in the period before, not in this one. PostHog draws dormant
  below the axis as a negative number; here it is a count (positive).

Activity before the first period counts for the first period's returning/resurrecting/
dormant, as in PostHog.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb

from journey.cohorts.periods import BREAKDOWNS, Calendar, EventMatch, breakdown_sql
from journey.errors import InputError
from journey.projections.publish import data_now

__all__ = ["Lifecycle", "LifecyclePeriod", "lifecycle"]


@dataclass(frozen=True)
class LifecyclePeriod:
    start: date
    new: int = 0
    returning: int = 0
    resurrecting: int = 0
    dormant: int = 0


@dataclass(frozen=True)
class Lifecycle:
    period: str
    periods: list[LifecyclePeriod] = field(default_factory=list)
    breakdown: dict[str, list[LifecyclePeriod]] | None = None
    """Per value of the breakdown (``"(none)"`` for customers without one)."""

    def to_dict(self) -> dict[str, object]:
        facts: dict[str, object] = {"period": self.period, "periods": _periods(self.periods)}
        if self.breakdown is not None:
            facts["breakdown"] = {value: _periods(periods) for value, periods in self.breakdown.items()}
        return facts


def _periods(periods: list[LifecyclePeriod]) -> list[dict[str, object]]:
    return [{"start": p.start.isoformat(), "new": p.new, "returning": p.returning,
             "resurrecting": p.resurrecting, "dormant": p.dormant} for p in periods]


def lifecycle(con: duckdb.DuckDBPyConnection, event: EventMatch, calendar: Calendar, *,
              start: datetime | None = None, end: datetime | None = None, periods: int = 8,
              by: str | None = None) -> Lifecycle:
    """Lifecycle on ``touchpoints`` from the period holding ``start`` to the one holding
    ``end`` (default: the latest touch; ``start`` defaults to ``periods - 1`` before it).
    ``by`` breaks it down by a column of ``customers`` (one of ``BREAKDOWNS``)."""
    if by is not None and by not in BREAKDOWNS:
        raise InputError(f"--by {by!r}: use one of {', '.join(BREAKDOWNS)}")
    last = calendar.start_of(con, data_now(con, end))
    first = calendar.start_of(con, start) if start is not None else calendar.shift(con, last, -(periods - 1))
    if first > last:
        raise InputError("--from is after --to: the first period would come after the last")
    active, name = event.condition("name")
    group, join = breakdown_sql(by)
    rows = con.execute(f"""
        WITH touches AS (
            SELECT t.customer_id, {calendar.start_sql('t.occurred_at')} AS period, {active} AS active, {group} AS grp
            FROM touchpoints t {join} WHERE t.customer_id IS NOT NULL
        ), born AS (
            SELECT customer_id, min(period) AS born, any_value(grp) AS grp FROM touches GROUP BY customer_id
        ), active AS (
            SELECT DISTINCT customer_id, period FROM touches WHERE active
        ), marked AS (
            SELECT a.customer_id, a.period, b.born, b.grp,
                   lag(a.period) OVER (PARTITION BY a.customer_id ORDER BY a.period) AS previous,
                   lead(a.period) OVER (PARTITION BY a.customer_id ORDER BY a.period) AS next
            FROM active a JOIN born b USING (customer_id)
        ), statuses AS (
            SELECT grp, period, CASE
                WHEN born = period THEN 'new'
                WHEN previous IS NOT NULL AND {calendar.index_sql('previous', 'period')} = 1 THEN 'returning'
                ELSE 'resurrecting' END AS status
            FROM marked
            UNION ALL
            SELECT grp, CAST(period + {calendar.step_sql()} AS DATE), 'dormant' FROM marked
            WHERE next IS NULL OR {calendar.index_sql('period', 'next')} > 1
        )
        SELECT grp, period, status, count(*) FROM statuses WHERE period BETWEEN $first AND $last GROUP BY ALL
    """, {**name, "first": first, "last": last}).fetchall()
    counts: dict[tuple[str | None, date, str], int] = {}
    for grp, p, status, n in rows:
        counts[(grp, p, status)] = n
        counts[(None, p, status)] = counts.get((None, p, status), 0) + n
    starts = calendar.starts(con, first, last)

    def series(grp: str | None) -> list[LifecyclePeriod]:
        return [LifecyclePeriod(p, *(counts.get((grp, p, s), 0) for s in ("new", "returning", "resurrecting", "dormant")))
                for p in starts]

    groups = sorted({grp for grp, _p, _s, _n in rows})
    return Lifecycle(calendar.period, series(None), {g: series(g) for g in groups} if by is not None else None)
