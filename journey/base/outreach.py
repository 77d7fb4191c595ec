"""Outreach that is measured: did the customers a worklist contacted come back more often
than the comparable customers it held out?

For the tasks of a rule that were due at least ``within`` before ``now`` (so every one of
them had the whole window; journeys still inside it are not counted), a customer
*responded* when they booked or visited within ``within`` after the task was due. Groups:

- **contacted**: given out by the worklist, and the task was done;
- **not contacted**: given out, not done;
- **held out**: left out on purpose (``holdout`` of the rule; deterministic by pseudonym).

The uplift is the contacted response rate minus the held-out one, with a 95% interval
(Newcombe's hybrid score interval from two Wilson intervals). Groups under ``SMALL``
customers are flagged: their rates move a lot with one patient.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime

import duckdb

from journey.base.worklists import WorklistModel, tasks_table
from journey.errors import InputError
from journey.projections.publish import data_now
from journey.projections.stage_model import parse_duration

__all__ = ["SMALL", "Group", "Outreach", "newcombe_interval", "outreach", "wilson_interval"]

SMALL = 30
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Group:
    customers: int
    responded: int

    @property
    def rate(self) -> float | None:
        return self.responded / self.customers if self.customers else None

    @property
    def small(self) -> bool:
        return self.customers < SMALL


@dataclass(frozen=True)
class Outreach:
    rule: str
    within_seconds: int
    now: datetime
    contacted: Group
    not_contacted: Group
    held_out: Group
    held_out_contacted: int
    """Held-out customers who were contacted anyway (the holdout was not kept)."""
    uplift: float | None
    interval: tuple[float, float] | None

    def to_dict(self) -> dict[str, object]:
        def group(g: Group) -> dict[str, object]:
            return {**asdict(g), "rate": g.rate, "small": g.small}

        return {"rule": self.rule, "within_seconds": self.within_seconds, "now": self.now.isoformat(),
                "contacted": group(self.contacted), "not_contacted": group(self.not_contacted),
                "held_out": group(self.held_out), "held_out_contacted": self.held_out_contacted,
                "uplift": self.uplift, "interval_95": list(self.interval) if self.interval else None}


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def newcombe_interval(a: Group, b: Group, z: float = Z95) -> tuple[float, float] | None:
    """The 95% interval of ``a.rate - b.rate`` (Newcombe 1998, method 10)."""
    if not a.customers or not b.customers:
        return None
    p1, p2 = a.responded / a.customers, b.responded / b.customers
    l1, u1 = wilson_interval(a.responded, a.customers, z)
    l2, u2 = wilson_interval(b.responded, b.customers, z)
    difference = p1 - p2
    return (difference - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
            difference + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


def outreach(con: duckdb.DuckDBPyConnection, model: WorklistModel, rule: str, within: str = "30d",
             now: datetime | None = None) -> Outreach:
    if rule not in model.rules:
        raise InputError(f"no rule {rule!r}; the rules are {', '.join(model.rules)}")
    seconds = parse_duration(within)
    now = data_now(con, now)
    tasks_table(con, model, now)
    rows = con.execute("""
        SELECT held_out, done_at IS NOT NULL AS contacted, count(*) AS customers,
               count(*) FILTER (WHERE EXISTS (
                   SELECT 1 FROM touchpoints t WHERE t.customer_id = w.customer_id AND t.type IN ('booking', 'visit')
                   AND t.occurred_at > w.due_at AND t.occurred_at <= w.due_at + to_seconds($within))) AS responded
        FROM worklist_tasks w
        WHERE rule = $rule AND due_at + to_seconds($within) <= $now::TIMESTAMPTZ
        GROUP BY ALL
    """, {"rule": rule, "within": seconds, "now": now}).fetchall()
    cells = {(bool(h), bool(c)): (n, r) for h, c, n, r in rows}

    def cell(held: bool, contacted: bool) -> tuple[int, int]:
        return cells.get((held, contacted), (0, 0))

    contacted = Group(*cell(False, True))
    not_contacted = Group(*cell(False, False))
    held = [cell(True, True), cell(True, False)]
    held_out = Group(sum(n for n, _ in held), sum(r for _, r in held))
    uplift = (contacted.rate - held_out.rate) if contacted.rate is not None and held_out.rate is not None else None
    return Outreach(rule, seconds, now, contacted, not_contacted, held_out, cell(True, True)[0], uplift,
                    newcombe_interval(contacted, held_out))
