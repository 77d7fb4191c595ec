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

from journey.cohorts.periods import Calendar, EventMatch
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

    def to_dict(self) -> dict[str, object]:
        return {"period": self.period, "periods": [
            {"start": p.start.isoformat(), "new": p.new, "returning": p.returning,
             "resurrecting": p.resurrecting, "dormant": p.dormant} for p in self.periods]}


def lifecycle(con: duckdb.DuckDBPyConnection, event: EventMatch, calendar: Calendar, *,
              start: datetime | None = None, end: datetime | None = None, periods: int = 8) -> Lifecycle:
    """Lifecycle on ``touchpoints`` from the period holding ``start`` to the one holding
    ``end`` (default: the latest touch; ``start`` defaults to ``periods - 1`` before it)."""
    last = calendar.start_of(con, data_now(con, end))
    first = calendar.start_of(con, start) if start is not None else calendar.shift(con, last, -(periods - 1))
    if first > last:
        raise InputError("--from is after --to: the first period would come after the last")
    period = calendar.start_sql("occurred_at")
    active, name = event.condition("name")
    rows = con.execute(f"""
        WITH touches AS (
            SELECT customer_id, {period} AS period, {active} AS active
            FROM touchpoints WHERE customer_id IS NOT NULL
        ), born AS (
            SELECT customer_id, min(period) AS born FROM touches GROUP BY customer_id
        ), active AS (
            SELECT DISTINCT customer_id, period FROM touches WHERE active
        ), marked AS (
            SELECT a.customer_id, a.period, b.born,
                   lag(a.period) OVER (PARTITION BY a.customer_id ORDER BY a.period) AS previous,
                   lead(a.period) OVER (PARTITION BY a.customer_id ORDER BY a.period) AS next
            FROM active a JOIN born b USING (customer_id)
        ), statuses AS (
            SELECT period, CASE
                WHEN born = period THEN 'new'
                WHEN previous IS NOT NULL AND {calendar.index_sql('previous', 'period')} = 1 THEN 'returning'
                ELSE 'resurrecting' END AS status
            FROM marked
            UNION ALL
            SELECT CAST(period + {calendar.step_sql()} AS DATE), 'dormant' FROM marked
            WHERE next IS NULL OR {calendar.index_sql('period', 'next')} > 1
        )
        SELECT period, status, count(*) FROM statuses WHERE period BETWEEN $first AND $last GROUP BY ALL
    """, {**name, "first": first, "last": last}).fetchall()
    counts = {(p, status): n for p, status, n in rows}
    return Lifecycle(calendar.period, [
        LifecyclePeriod(p, *(counts.get((p, s), 0) for s in ("new", "returning", "resurrecting", "dormant")))
        for p in calendar.starts(con, first, last)])
