"""The clinic report's numbers, each one aggregate computed in DuckDB.

Only these aggregates reach the page: counts, rates, sums per stage, per owner, per
rule. No touch and no customer id leaves the database, so the page is as small on a
million touches as on a thousand. Tables other engineers write (``stage_funnel``,
``failure_points``, ``failure_reasons``, ``consent_violations``) may be missing from an
older projection: their readers return ``None`` and the page says "not available".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from journey.projections.metrics import DOCTOR_SCORECARD
from journey.projections.reading import columns_of, has_table, metrics_source
from journey.projections.stage_model import default_stage_model

CHANNEL_METRICS = ("leads", "new_patients", "conversion", "cost_per_lead", "cost_per_call", "cost_per_booking",
                   "cost_per_new_patient", "lifetime_revenue", "roas")

__all__ = ["CHANNEL_METRICS", "DOCTOR_SCORECARD", "HEADLINE", "FailurePoint", "Figure", "FunnelRow", "Headline",
           "breakdown", "compliance", "failure_points", "failure_reasons", "funnel", "has_table", "headline"]

_FUNNEL = """
WITH furthest AS (  -- without a visit, a journey gets no further than booking (a promotion is no treatment)
    SELECT customer_id, CASE WHEN bool_or(type = 'visit') THEN max(list_position(?::VARCHAR[], stage))
                             ELSE least(max(list_position(?::VARCHAR[], stage)), ?) END AS reached
    FROM touchpoints WHERE stage IS NOT NULL AND customer_id NOT LIKE 'ambiguous:%' GROUP BY 1
), first_entry AS (
    SELECT customer_id, stage, min(occurred_at) AS at FROM touchpoints
    WHERE stage IS NOT NULL GROUP BY ALL
), stages AS (SELECT unnest(?::VARCHAR[]) AS stage, unnest(range(1, len(?::VARCHAR[]) + 1)) AS stage_order)
SELECT s.stage, s.stage_order,
    (SELECT count(*) FROM furthest WHERE reached >= s.stage_order) AS entered,
    (SELECT count(*) FROM furthest WHERE reached > s.stage_order) AS reached_next,
    (SELECT median((epoch_us(b.at) - epoch_us(a.at)) / 1e6) FROM first_entry a
        JOIN first_entry b ON a.customer_id = b.customer_id AND b.stage = ?[s.stage_order + 1]
        WHERE a.stage = s.stage AND b.at >= a.at) AS median_seconds_to_next
FROM stages s ORDER BY s.stage_order
"""


HEADLINE = ("new_patients", "conversion", "no_show_rate", "repeat_rate", "revenue", "cost_per_new_patient")
"""The clinic's figures at the top of the page, each a row of ``clinic_metrics``."""


@dataclass(frozen=True)
class Figure:
    """One ``clinic_metrics`` result and its unit (``share``, ``count``, a currency...)."""

    metric: str
    result: float | None
    unit: str | None
    denominator: float | None = None


@dataclass(frozen=True)
class FunnelRow:
    stage: str
    stage_order: int
    entered: int
    reached_next: int | None
    """None at the last stage (there is no next one)."""
    median_seconds_to_next: float | None
    in_progress: int = 0
    """Not moved on yet, still inside the stage's time limit: deciding, not lost."""
    conversion_within_sla: float | None = None
    sla_seconds: int | None = None

    @property
    def dropped(self) -> int:
        return self.entered - (self.reached_next or 0)

    @property
    def lost(self) -> int:
        return self.dropped - self.in_progress


@dataclass(frozen=True)
class Headline:
    """The figures at the top of the page, by metric."""

    figures: dict[str, Figure]

    @property
    def new_patients(self) -> int:
        return int(self.figures["new_patients"].result or 0)


def headline(con: duckdb.DuckDBPyConnection) -> Headline:
    """The headline figures, rows of ``clinic_metrics`` (of its query on an older projection)."""
    rows = {m: (r, u, d) for m, r, u, d in con.execute(
        f"SELECT metric, result, unit, denominator FROM {metrics_source(con)} WHERE dimension = 'all' "
        "AND metric IN (SELECT unnest(?::VARCHAR[]))", [list(HEADLINE)]).fetchall()}
    return Headline({m: Figure(m, *rows.get(m, (None, None, None))) for m in HEADLINE})


def breakdown(con: duckdb.DuckDBPyConnection, dimension: str, metrics: tuple[str, ...]
              ) -> dict[str, dict[str, Figure]]:
    """value -> metric -> figure for one dimension of ``clinic_metrics`` (the doctor
    scorecard: ``doctor`` and ``DOCTOR_SCORECARD``; acquisition: ``channel``)."""
    table: dict[str, dict[str, Figure]] = {}
    for metric, value, result, unit, denominator in con.execute(
            f"SELECT metric, value, result, unit, denominator FROM {metrics_source(con)} WHERE dimension = ? "
            "AND metric IN (SELECT unnest(?::VARCHAR[])) ORDER BY value", [dimension, list(metrics)]).fetchall():
        table.setdefault(value, {})[metric] = Figure(metric, result, unit, denominator)
    return table


def stage_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The stages in journey order: the projection's own model (``stage_funnel``) when it
    has one, else the default model."""
    if has_table(con, "stage_funnel"):
        return [s for (s,) in con.execute("SELECT stage FROM stage_funnel ORDER BY stage_order").fetchall()]
    return list(default_stage_model().names)


def funnel(con: duckdb.DuckDBPyConnection) -> tuple[list[FunnelRow], bool]:
    """The stage funnel: ``stage_funnel`` when the projection has it (True), else computed
    here (False): a customer *entered* a stage when their journey got at least that far
    (stages from first_visit on only with a visit)."""
    if has_table(con, "stage_funnel"):
        newer = ("coalesce(in_progress, 0), conversion_within_sla" if "in_progress" in columns_of(con, "stage_funnel")
                 else "0, NULL") + ", sla_seconds"
        rows = con.execute("SELECT stage, stage_order, entered, reached_next, median_seconds_to_next, "
                           f"{newer} FROM stage_funnel ORDER BY stage_order").fetchall()
        return [FunnelRow(*r) for r in rows], True
    stages = stage_names(con)
    before_visit = stages.index("first_visit")
    rows = con.execute(_FUNNEL, [stages, stages, before_visit, stages, stages, stages]).fetchall()
    return [FunnelRow(*r) for r in rows], False


SHOWN_LIFT = 1.1
"""A point that could be chance is listed only when it loses at least this much more often."""


@dataclass(frozen=True)
class FailurePoint:
    stage: str
    next_stage: str
    dimension: str
    value: str
    entered: int
    failed: int
    failure_rate: float
    overall_rate: float
    lift: float | None
    p_value: float | None
    q_value: float | None
    significant: bool
    better: bool


def failure_points(con: duckdb.DuckDBPyConnection, limit: int = 10, better: bool = False
                   ) -> list[FailurePoint] | None:
    """The owners whose patients are lost more often than the rest of their stage (tested
    ones only; those that could be chance only from ``SHOWN_LIFT``): the significant first, then the most patients lost beyond the stage's
    usual rate (``better``: the values that lose significantly fewer, best first)."""
    if not has_table(con, "failure_points"):
        return None
    current = "better" in columns_of(con, "failure_points")
    if better and not current:
        return []
    newer = "q_value, better" if current else "NULL, false"
    where = "better" if better else f"lift > 1 AND p_value IS NOT NULL AND (significant OR lift >= {SHOWN_LIFT})"
    order = "entered * overall_rate - failed" if better else "significant DESC, failed - entered * overall_rate"
    rows = con.execute(
        "SELECT stage, next_stage, dimension, value, entered, failed, failure_rate, overall_rate, lift, p_value, "
        f"{newer}, significant FROM failure_points WHERE {where} ORDER BY {order} DESC, stage, dimension, value "
        "LIMIT ?", [limit]).fetchall()
    return [FailurePoint(*r[:10], r[10], r[12], r[11]) for r in rows]


def failure_reasons(con: duckdb.DuckDBPyConnection, limit: int = 10) -> list[tuple[Any, ...]] | None:
    """The commonest reasons patients were lost (the ``limit`` largest), in journey order."""
    if not has_table(con, "failure_reasons"):
        return None
    return con.execute("SELECT stage, reason, failed, share FROM (SELECT * FROM failure_reasons "
                       "ORDER BY failed DESC LIMIT ?) r ORDER BY list_position(?::VARCHAR[], stage), failed DESC",
                       [limit, stage_names(con)]).fetchall()


def compliance(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]] | None:
    """Messages sent without consent, by channel and reason (counts only)."""
    if not has_table(con, "consent_violations"):
        return None
    return con.execute("SELECT channel, purpose, reason, count(*) AS messages, "
                       "count(DISTINCT customer_id) AS patients FROM consent_violations "
                       "GROUP BY ALL ORDER BY messages DESC").fetchall()


@dataclass(frozen=True)
class StageChange:
    """A stage's loss rate in its latest decided month against the decided month before."""

    stage: str
    next_stage: str
    owners: list[str]
    month: Any
    entered: int
    lost: int
    loss_rate: float
    previous_month: Any
    previous_entered: int
    previous_lost: int
    previous_loss_rate: float
    change_points: float
    p_value: float | None
    q_value: float | None
    significant: bool
    worse: bool


def stage_changes(con: duckdb.DuckDBPyConnection) -> list[StageChange] | None:
    """What changed (``stage_changes``), the significant first, then the largest rise."""
    if not has_table(con, "stage_changes"):
        return None
    rows = con.execute(
        "SELECT stage, next_stage, owners, month, entered, lost, loss_rate, previous_month, previous_entered, "
        "previous_lost, previous_loss_rate, change_points, p_value, q_value, significant, worse "
        "FROM stage_changes ORDER BY significant DESC, change_points DESC, stage").fetchall()
    return [StageChange(*row) for row in rows]
