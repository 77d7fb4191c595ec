"""Typical patient portraits: the few kinds of patient that make up the base.

A portrait is a combination of age band, sex and the problem patients come with (the
profile facts the articles build portraits from). The portraits are the combinations with
the most patients (ties broken by revenue, then by name, so the same data always gives the
same portraits), each with its share of patients and of revenue, the districts they live
in, and the first channels that bring them. Patients without a profile are not portrayed
and are counted apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

import duckdb

from journey.errors import InputError
from journey.projections.publish import data_now

__all__ = ["AGE_BANDS", "Portrait", "Portraits", "portraits"]

AGE_BANDS = ((0, 17, "0-17"), (18, 29, "18-29"), (30, 44, "30-44"), (45, 59, "45-59"), (60, 200, "60+"))


@dataclass(frozen=True)
class Portrait:
    age_band: str
    sex: str
    problem: str
    patients: int
    patient_share: float
    revenue: float
    revenue_share: float
    revenue_per_patient: float
    districts: list[str] = field(default_factory=list)
    channels: list[tuple[str, int]] = field(default_factory=list)
    """First channels with how many of the portrait's patients each brought, most first."""

    @property
    def title(self) -> str:
        return f"{self.sex}, {self.age_band}, {self.problem}"


@dataclass(frozen=True)
class Portraits:
    patients: int
    """Patients with a profile (age, sex, problem) as of the moment."""
    without_profile: int
    revenue: float
    portraits: list[Portrait]

    def to_dict(self) -> dict[str, object]:
        return {"patients": self.patients, "without_profile": self.without_profile, "revenue": self.revenue,
                "portraits": [{**asdict(p), "title": p.title} for p in self.portraits]}


def _band_sql(age: str) -> str:
    cases = " ".join(f"WHEN {age} BETWEEN {low} AND {high} THEN '{name}'" for low, high, name in AGE_BANDS)
    return f"CASE {cases} END"


def portraits(con: duckdb.DuckDBPyConnection, top: int = 3, as_of: datetime | None = None) -> Portraits:
    """The ``top`` portraits (2 to 5) of the patients who visited, as of ``as_of``."""
    if not 1 <= top <= 5:
        raise InputError("--top: between 1 and 5 portraits (a portrait is a typical patient, not a segment)")
    moment = data_now(con, as_of)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE portrait_patients AS
        SELECT customer_id, {_band_sql("year($m::TIMESTAMPTZ) - birth_year")} AS age_band, sex, problem,
               district, first_channel, revenue
        FROM customers WHERE visits > 0
    """, {"m": moment})
    total, without, revenue = con.execute(
        "SELECT count(*) FILTER (WHERE age_band IS NOT NULL AND sex IS NOT NULL AND problem IS NOT NULL), "
        "count(*) FILTER (WHERE age_band IS NULL OR sex IS NULL OR problem IS NULL), "
        "coalesce(sum(revenue) FILTER (WHERE age_band IS NOT NULL AND sex IS NOT NULL AND problem IS NOT NULL), 0) "
        "FROM portrait_patients").fetchone()  # type: ignore[misc]
    rows = con.execute("""
        SELECT age_band, sex, problem, count(*) AS patients, coalesce(sum(revenue), 0) AS revenue,
               list(DISTINCT district ORDER BY district) FILTER (WHERE district IS NOT NULL) AS districts
        FROM portrait_patients WHERE age_band IS NOT NULL AND sex IS NOT NULL AND problem IS NOT NULL
        GROUP BY ALL ORDER BY patients DESC, revenue DESC, age_band, sex, problem LIMIT $top
    """, {"top": top}).fetchall()
    found = []
    for band, sex, problem, patients, money, districts in rows:
        channels = con.execute(
            "SELECT coalesce(first_channel, '(unknown)'), count(*) FROM portrait_patients "
            "WHERE age_band = $b AND sex = $s AND problem = $p GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3",
            {"b": band, "s": sex, "p": problem}).fetchall()
        money = float(money)
        found.append(Portrait(band, sex, problem, patients, patients / total if total else 0.0, money,
                              money / float(revenue) if revenue else 0.0, money / patients,
                              list(districts or [])[:5], [(c, n) for c, n in channels]))
    return Portraits(total, without, float(revenue), found)
