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

from journey.projections.stage_model import default_stage_model

__all__ = ["FunnelRow", "Headline", "compliance", "failure_points", "failure_reasons", "funnel",
           "has_table", "headline"]

_HEADLINE = """
WITH people AS (SELECT * FROM customers WHERE NOT ambiguous),
touch AS (SELECT
    count(*) FILTER (WHERE type = 'no_show') AS no_shows,
    count(*) FILTER (WHERE type = 'visit' AND booking_id IS NOT NULL) AS booked_visits,
    sum(amount) FILTER (WHERE type = 'ad_spend') AS ad_spend,
    mode(currency) FILTER (WHERE type = 'payment') AS currency
    FROM touchpoints)
SELECT
    (SELECT count(*) FROM people) AS customers,
    (SELECT count(*) FROM people WHERE visits > 0) AS new_patients,
    (SELECT count(*) FROM people WHERE visits > 1) AS returning,
    (SELECT coalesce(sum(revenue), 0) FROM people)::DOUBLE AS revenue,
    no_shows, booked_visits, ad_spend::DOUBLE, currency
FROM touch
"""

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


@dataclass(frozen=True)
class Headline:
    """The numbers at the top of the page."""

    customers: int
    new_patients: int
    returning: int
    revenue: float
    no_shows: int
    booked_visits: int
    ad_spend: float | None
    currency: str | None

    @property
    def conversion(self) -> float:
        """Of everyone who touched the clinic, the share who came to a first visit."""
        return self.new_patients / self.customers if self.customers else 0.0

    @property
    def no_show_rate(self) -> float:
        """Of appointments that were due (kept or missed), the share missed."""
        due = self.no_shows + self.booked_visits
        return self.no_shows / due if due else 0.0

    @property
    def repeat_rate(self) -> float:
        """Of patients who came once, the share who came again."""
        return self.returning / self.new_patients if self.new_patients else 0.0

    @property
    def cost_per_new_patient(self) -> float | None:
        if self.ad_spend is None or not self.new_patients:
            return None
        return self.ad_spend / self.new_patients


@dataclass(frozen=True)
class FunnelRow:
    stage: str
    stage_order: int
    entered: int
    reached_next: int
    median_seconds_to_next: float | None

    @property
    def dropped(self) -> int:
        return self.entered - self.reached_next


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ? "
                            "AND table_catalog = current_database() AND table_schema = current_schema()",
                            [name]).fetchone()[0])


def headline(con: duckdb.DuckDBPyConnection) -> Headline:
    return Headline(*con.execute(_HEADLINE).fetchone())


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
        rows = con.execute("SELECT stage, stage_order, entered, reached_next, median_seconds_to_next "
                           "FROM stage_funnel ORDER BY stage_order").fetchall()
        return [FunnelRow(*r) for r in rows], True
    stages = stage_names(con)
    before_visit = stages.index("first_visit")
    rows = con.execute(_FUNNEL, [stages, stages, before_visit, stages, stages, stages]).fetchall()
    return [FunnelRow(*r) for r in rows], False


def failure_points(con: duckdb.DuckDBPyConnection, limit: int = 10) -> list[tuple[Any, ...]] | None:
    """The owners whose patients are lost most often beyond the clinic's usual rate."""
    if not has_table(con, "failure_points"):
        return None
    return con.execute(
        "SELECT stage, next_stage, dimension, value, entered, failed, failure_rate, overall_rate, lift, "
        "significant FROM failure_points WHERE failed > 0 AND lift > 1 "
        "ORDER BY significant DESC, failed - entered * overall_rate DESC LIMIT ?", [limit]).fetchall()


def failure_reasons(con: duckdb.DuckDBPyConnection, limit: int = 10) -> list[tuple[Any, ...]] | None:
    if not has_table(con, "failure_reasons"):
        return None
    return con.execute("SELECT stage, reason, failed, share FROM failure_reasons "
                       "ORDER BY failed DESC LIMIT ?", [limit]).fetchall()


def compliance(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]] | None:
    """Messages sent without consent, by channel and reason (counts only)."""
    if not has_table(con, "consent_violations"):
        return None
    return con.execute("SELECT channel, purpose, reason, count(*) AS messages, "
                       "count(DISTINCT customer_id) AS patients FROM consent_violations "
                       "GROUP BY ALL ORDER BY messages DESC").fetchall()
