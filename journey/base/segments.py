"""Segments: named, saved definitions over what the projection knows of a customer.

A clinic edits a TOML file (``JOURNEY_SEGMENTS``; the default ships as
``default_segments.toml``)::

    [segments.implants_undecided]
    description = "Interested in implants, did not decide"
    include = { services = ["implant"] }
    exclude = { plan_accepted = true }

A customer is a member when every ``include`` condition holds and no ``exclude``
condition does (each condition of ``exclude`` excludes on its own). The conditions are a
fixed vocabulary (``Conditions``), validated with clear errors and compiled to SQL in
which every value from the file is a bound parameter. Everything is evaluated *as of* a
moment: only touches that occurred by then count, and ages, "no visit for N days" and
consents are taken at that moment (default: the latest touch in the data).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from journey.base._files import Binder, load_model
from journey.errors import InputError
from journey.projections.publish import data_now

__all__ = ["Conditions", "Segment", "SegmentModel", "SegmentSize", "default_segments", "load_segments",
           "members", "segment_sizes", "write_segment_tables"]

Names = list[Annotated[str, Field(min_length=1, max_length=200)]]
Days = Annotated[int, Field(ge=1, le=36_500)]
Age = Annotated[int, Field(ge=0, le=130)]


class Conditions(BaseModel):
    """What a segment may test. Lists mean "any of"; every condition given must hold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sex: Names | None = None
    district: Names | None = None
    city: Names | None = None
    problem: Names | None = None
    age_min: Age | None = None
    age_max: Age | None = None
    turns_age: Age | None = Field(None, description="reaches this age in the calendar year of the moment")
    conditions: Names | None = Field(None, description="profile conditions, e.g. pregnant, prosthesis_smile_zone")
    stage_reached: Names | None = Field(None, description="reached any of these stages")
    services: Names | None = Field(None, description="a booking, visit or plan names a service containing any of these")
    plan_proposed: bool | None = None
    plan_accepted: bool | None = None
    plan_declined: bool | None = None
    channels: Names | None = Field(None, description="some touch came through any of these channels")
    first_channel: Names | None = None
    consent: Names | None = Field(None, description="CHANNEL:PURPOSE grants in force, e.g. sms:marketing (all)")
    visited: bool | None = None
    no_visit_days: Days | None = Field(None, description="visited, but not in this many days before the moment")
    visit_within_days: Days | None = Field(None, description="visited in this many days before the moment")
    booked_ahead: bool | None = Field(None, description="has a booking scheduled after the moment")
    spend_min: Annotated[float, Field(ge=0)] | None = None
    spend_max: Annotated[float, Field(ge=0)] | None = None


class Segment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    description: Annotated[str, Field(min_length=1, max_length=500)]
    include: Conditions = Conditions()
    exclude: Conditions = Conditions()


class SegmentModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    segments: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")], Segment] = Field(min_length=1)

    def get(self, name: str) -> Segment:
        if name not in self.segments:
            raise InputError(f"no segment {name!r}; the segments are {', '.join(self.segments)} "
                             "(`journey segments` lists them)")
        return self.segments[name]


def load_segments(path: Path | None = None) -> SegmentModel:
    """The segments file at ``path``, or the shipped default; a clear error otherwise."""
    return load_model(SegmentModel, path, "default_segments.toml", "segments")


def default_segments() -> SegmentModel:
    return load_model(SegmentModel, None, "default_segments.toml", "segments")


# -- compiling -------------------------------------------------------------------------

_FACTS = """
CREATE OR REPLACE TEMP TABLE segment_facts AS
WITH t AS (SELECT * FROM touchpoints WHERE customer_id IS NOT NULL AND occurred_at <= $as_of),
profile AS (
    SELECT customer_id,
        arg_max(TRY_CAST((properties->>'birth_year') AS INTEGER), seq) FILTER (WHERE TRY_CAST((properties->>'birth_year') AS INTEGER) IS NOT NULL) AS birth_year,
        arg_max((properties->>'sex'), seq) FILTER (WHERE (properties->>'sex') IS NOT NULL) AS sex,
        arg_max((properties->>'city'), seq) FILTER (WHERE (properties->>'city') IS NOT NULL) AS city,
        arg_max((properties->>'district'), seq) FILTER (WHERE (properties->>'district') IS NOT NULL) AS district,
        arg_max((properties->>'problem'), seq) FILTER (WHERE (properties->>'problem') IS NOT NULL) AS problem,
        arg_max(CAST((properties->'conditions') AS VARCHAR[]), seq) FILTER (WHERE (properties->'conditions') IS NOT NULL) AS conditions
    FROM t WHERE type = 'profile' GROUP BY customer_id
),
consents AS (
    SELECT customer_id, list(channel_purpose) FILTER (WHERE granted) AS granted FROM (
        SELECT customer_id, ((properties->>'channel')) || ':' || ((properties->>'purpose')) AS channel_purpose,
               arg_max((properties->>'action') = 'granted', seq) AS granted
        FROM t WHERE type = 'consent' GROUP BY ALL) GROUP BY customer_id
)
SELECT c.customer_id, p.* EXCLUDE (customer_id), cs.granted AS consents,
    year($as_of::TIMESTAMPTZ) - p.birth_year AS age_this_year,
    date_diff('year', make_date(p.birth_year, 7, 1), CAST($as_of::TIMESTAMPTZ AS DATE)) AS age,
    c.stages, c.services, c.channels, c.first_channel, c.plans_proposed, c.plans_accepted, c.plans_declined,
    c.last_visit_at, c.visits, c.revenue, c.booked_ahead
FROM (
    SELECT customer_id,
        list(DISTINCT stage) FILTER (WHERE stage IS NOT NULL) AS stages,
        list(DISTINCT lower(s)) FILTER (WHERE s IS NOT NULL) AS services,
        list(DISTINCT channel) FILTER (WHERE channel IS NOT NULL) AS channels,
        arg_min(channel, seq) FILTER (WHERE channel IS NOT NULL) AS first_channel,
        count(*) FILTER (WHERE type = 'treatment_plan' AND status = 'proposed') AS plans_proposed,
        count(*) FILTER (WHERE type = 'treatment_plan' AND status = 'accepted') AS plans_accepted,
        count(*) FILTER (WHERE type = 'treatment_plan' AND status = 'declined') AS plans_declined,
        max(occurred_at) FILTER (WHERE type = 'visit') AS last_visit_at,
        count(*) FILTER (WHERE type = 'visit') AS visits,
        coalesce(sum(amount) FILTER (WHERE type = 'payment'), 0) AS revenue,
        bool_or(type = 'booking' AND TRY_CAST((properties->>'scheduled_at') AS TIMESTAMPTZ) > $as_of) AS booked_ahead
    FROM (SELECT *, unnest(CASE WHEN (properties->'services') IS NOT NULL THEN CAST((properties->'services') AS VARCHAR[])
                                WHEN (properties->>'service') IS NOT NULL THEN [(properties->>'service')]
                                ELSE [NULL] END) AS s FROM t)
    GROUP BY customer_id
) c
LEFT JOIN profile p USING (customer_id)
LEFT JOIN consents cs USING (customer_id)
"""


def _predicates(c: Conditions, bind: Binder, moment: datetime) -> list[str]:
    """One SQL predicate on ``segment_facts`` per condition given."""
    out: list[str] = []
    for column in ("sex", "district", "city", "problem", "first_channel"):
        if (values := getattr(c, column)) is not None:
            out.append(f"{column} IN (SELECT unnest({bind(values)}::VARCHAR[]))")
    if c.age_min is not None:
        out.append(f"age >= {bind(c.age_min)}")
    if c.age_max is not None:
        out.append(f"age <= {bind(c.age_max)}")
    if c.turns_age is not None:
        out.append(f"age_this_year = {bind(c.turns_age)}")
    for column, values in (("conditions", c.conditions), ("stages", c.stage_reached), ("channels", c.channels)):
        if values is not None:
            out.append(f"coalesce(list_has_any({column}, {bind(values)}::VARCHAR[]), false)")
    if c.services is not None:
        out.append(f"coalesce(len(list_filter(services, lambda s: list_bool_or(list_transform("
                   f"{bind([v.lower() for v in c.services])}::VARCHAR[], lambda w: contains(s, w))))) > 0, false)")
    for column, flag in (("plans_proposed", c.plan_proposed), ("plans_accepted", c.plan_accepted),
                         ("plans_declined", c.plan_declined), ("visits", c.visited)):
        if flag is not None:
            out.append(f"({column} > 0) = {bind(flag)}")
    if c.consent is not None:
        out.append(f"coalesce(list_has_all(consents, {bind(c.consent)}::VARCHAR[]), false)")
    if c.no_visit_days is not None:
        out.append(f"last_visit_at < {bind(moment)}::TIMESTAMPTZ - to_days({bind(c.no_visit_days)})")
    if c.visit_within_days is not None:
        out.append(f"last_visit_at >= {bind(moment)}::TIMESTAMPTZ - to_days({bind(c.visit_within_days)})")
    if c.booked_ahead is not None:
        out.append(f"coalesce(booked_ahead, false) = {bind(c.booked_ahead)}")
    if c.spend_min is not None:
        out.append(f"revenue >= {bind(c.spend_min)}")
    if c.spend_max is not None:
        out.append(f"revenue <= {bind(c.spend_max)}")
    return out


def _where(segment: Segment, bind: Binder, moment: datetime) -> str:
    include = _predicates(segment.include, bind, moment) or ["true"]
    exclude = [f"coalesce({p}, false)" for p in _predicates(segment.exclude, bind, moment)]
    return " AND ".join([f"coalesce({p}, false)" for p in include] + [f"NOT {p}" for p in exclude])


def members(con: duckdb.DuckDBPyConnection, model: SegmentModel, name: str,
            as_of: datetime | None = None) -> list[str]:
    """The customers (pseudonyms) in segment ``name`` as of ``as_of``, sorted."""
    segment = model.get(name)
    moment = data_now(con, as_of)
    con.execute(_FACTS, {"as_of": moment})
    bind = Binder("s")
    where = _where(segment, bind, moment)
    rows = con.execute(f"SELECT customer_id FROM segment_facts WHERE {where} ORDER BY 1", bind.values).fetchall()
    return [r[0] for r in rows]


@dataclass(frozen=True)
class SegmentSize:
    name: str
    description: str
    size: int


def segment_sizes(con: duckdb.DuckDBPyConnection, model: SegmentModel,
                  as_of: datetime | None = None) -> tuple[datetime, list[SegmentSize]]:
    """Every segment with its size as of ``as_of``; members are left in the temporary
    table ``segment_members`` (segment, customer_id) on ``con``."""
    moment = data_now(con, as_of)
    con.execute(_FACTS, {"as_of": moment})
    con.execute("CREATE OR REPLACE TEMP TABLE segment_members (segment VARCHAR, customer_id VARCHAR)")
    for name, segment in model.segments.items():
        bind = Binder("s")
        where = _where(segment, bind, moment)
        con.execute(f"INSERT INTO segment_members SELECT $segment_name, customer_id FROM segment_facts WHERE {where}",
                    {**bind.values, "segment_name": name})
    sizes = dict(con.execute("SELECT segment, count(*) FROM segment_members GROUP BY 1").fetchall())
    return moment, [SegmentSize(name, s.description, sizes.get(name, 0)) for name, s in model.segments.items()]


def write_segment_tables(con: duckdb.DuckDBPyConnection, model: SegmentModel, catalog: str = "main",
                         as_of: datetime | None = None) -> None:
    """``segments`` (name, description, size, as_of) and ``segment_members`` in ``catalog``."""
    moment, sizes = segment_sizes(con, model, as_of)
    con.execute(f"CREATE OR REPLACE TABLE {catalog}.main.segment_members AS "
                "SELECT * FROM temp.segment_members ORDER BY segment, customer_id")
    con.execute(f"CREATE OR REPLACE TABLE {catalog}.main.segments (name VARCHAR, description VARCHAR, size BIGINT, "
                "as_of TIMESTAMPTZ)")
    for size in sizes:
        con.execute(f"INSERT INTO {catalog}.main.segments VALUES (?, ?, ?, ?)",
                    [size.name, size.description, size.size, moment])
