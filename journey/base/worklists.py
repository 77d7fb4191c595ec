"""Recall and care worklists: rules that turn the projection into tasks with an owner.

A clinic edits a TOML file (``JOURNEY_WORKLISTS``; the default ships as
``default_worklists.toml``). Each rule says which touch opens a task (``trigger``, or
``turns_age``), when it is due and by when it must be done, which touch does it
(``done``) and which makes it unnecessary (``cancel``), and who owns it. At a moment
``now`` (default: the latest touch in the data, never the wall clock) a task is

- **done**: a ``done`` touch happened after the trigger, by ``now``;
- **not_needed**: a ``cancel`` touch happened after the trigger (and it is not done);
- **held_out**: still open, and the customer is in the rule's holdout (below);
- **due**: open, ``due_at <= now < deadline``; **overdue**: open, ``now >= deadline``.

Tasks not yet due at ``now`` are not listed. The **holdout** is a deterministic share of
each rule's customers (by an MD5 of rule and pseudonym, so it is the same on every run
and for every reader) whom the worklist leaves out on purpose: comparing them with the
contacted customers measures what the outreach brings (``journey.base.outreach``).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, field_validator

from journey.base._files import Binder, load_model
from journey.errors import InputError
from journey.projections.publish import data_now
from journey.projections.stage_model import parse_duration

__all__ = ["STATUSES", "Match", "Rule", "Task", "WorklistModel", "default_worklists", "holdout_sql",
           "held_out", "load_worklists", "rule_for_purpose", "task_rates", "tasks", "tasks_table"]

STATUSES = ("due", "overdue", "done", "not_needed", "held_out")
Names = list[Annotated[str, Field(min_length=1, max_length=200)]]


class Match(BaseModel):
    """Which touches: of one of ``types``, meeting every other condition given."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    types: Names = Field(min_length=1)
    purpose: Names | None = None
    direction: Names | None = None
    services: Names | None = Field(None, description="a service containing any of these")
    first_visit: bool | None = None


class Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    description: Annotated[str, Field(min_length=1, max_length=500)]
    owner: Literal["administrator", "doctor"] | Annotated[str, Field(min_length=1, max_length=100)]
    """``administrator`` or ``doctor``: the one named on the triggering touch (else the
    role); any other text names the owner outright (``reception``)."""
    trigger: Match | None = None
    last_only: bool = False
    """Only the customer's last triggering touch opens a task (recall)."""
    turns_age: Annotated[int, Field(ge=0, le=130)] | None = None
    """Instead of ``trigger``: the task opens on 1 January of the year the customer turns this age."""
    due_after: str = "0s"
    window: str = "30d"
    """From due to the deadline."""
    deadline_before_scheduled: str | None = None
    """For bookings: the deadline is this long before the booking's scheduled time."""
    done: Match
    cancel: Match | None = None
    holdout: Annotated[float, Field(ge=0, le=0.5)] = 0.1

    @field_validator("due_after", "window", "deadline_before_scheduled")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    def model_post_init(self, _context: Any) -> None:
        if (self.trigger is None) == (self.turns_age is None):
            raise ValueError("give either trigger or turns_age")


class WorklistModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")], Rule] = Field(min_length=1)


def load_worklists(path: Path | None = None) -> WorklistModel:
    """The worklists file at ``path``, or the shipped default; a clear error otherwise."""
    return load_model(WorklistModel, path, "default_worklists.toml", "worklists")


def default_worklists() -> WorklistModel:
    return load_model(WorklistModel, None, "default_worklists.toml", "worklists")


# -- compiling -------------------------------------------------------------------------

def _match(m: Match, bind: Binder, t: str = "t") -> str:
    parts = [f"{t}.type IN (SELECT unnest({bind(m.types)}::VARCHAR[]))"]
    for column, values in (("purpose", m.purpose), ("direction", m.direction)):
        if values is not None:
            parts.append(f"{t}.{column} IN (SELECT unnest({bind(values)}::VARCHAR[]))")
    if m.services is not None:
        services = (f"coalesce(CAST(({t}.properties->'services') AS VARCHAR[]), "
                    f"[({t}.properties->>'service')])")
        parts.append(f"coalesce(len(list_filter({services}, lambda s: list_bool_or(list_transform("
                     f"{bind([v.lower() for v in m.services])}::VARCHAR[], lambda w: contains(lower(s), w))))) > 0, "
                     "false)")
    if m.first_visit is not None:
        parts.append(f"coalesce(TRY_CAST(({t}.properties->>'first_visit') AS BOOLEAN), false) = {bind(m.first_visit)}")
    return "(" + " AND ".join(parts) + ")"


def held_out(rule: str, pseudonym: str, share: float) -> bool:
    """Is the customer with ``pseudonym`` in the holdout of ``rule``? (``holdout_sql`` in Python.)"""
    return int(hashlib.md5(f"{rule}:{pseudonym}".encode()).hexdigest()[:8], 16) % 10000 < round(share * 10000)


def recall_holdout(pseudonymiser: Any, worklists: Path | None = None, rule: str = "recall") -> Callable[[str], bool]:
    """For a clinic system (the demo's generator): is the patient with this clinic
    ``customer_id`` held out of ``rule``'s worklist? Uses the same pseudonym as the projection."""
    rules = load_worklists(worklists).rules
    share = rules[rule].holdout if rule in rules else 0.0
    return lambda customer_id: bool(customer_id) and held_out(rule, pseudonymiser.key("customer_id", customer_id),
                                                               share)


def holdout_sql(rule: str, customer: str, share: str) -> str:
    """SQL: is ``customer`` in the holdout of ``rule`` (both SQL expressions)?"""
    return f"(('0x' || substr(md5({rule} || ':' || {customer}), 1, 8))::UBIGINT % 10000) < round({share} * 10000)"


def _rule_sql(name: str, rule: Rule, bind: Binder, now: str) -> str:
    owner = (f"coalesce(o.{rule.owner}, {bind(rule.owner + 's')})" if rule.owner in ("administrator", "doctor")
             else bind(rule.owner))
    if rule.turns_age is not None:
        opened = (f"SELECT customer_id, make_timestamptz(birth_year + {bind(rule.turns_age)}, 1, 1, 0, 0, 0, 'UTC') "
                  "AS opened_at, NULL AS administrator, NULL AS doctor, NULL::TIMESTAMPTZ AS scheduled_at "
                  "FROM (SELECT customer_id, min(occurred_at) AS known_since, "
                  "arg_max(TRY_CAST((properties->>'birth_year') AS INTEGER), seq) "
                  "FILTER (WHERE type = 'profile' AND TRY_CAST((properties->>'birth_year') AS INTEGER) IS NOT NULL) "
                  f"AS birth_year FROM touchpoints WHERE customer_id IS NOT NULL AND occurred_at <= {now} "
                  "GROUP BY customer_id) "
                  # only in a year the clinic knew the customer: no invitation for an adult's thirteenth year
                  f"WHERE birth_year + {bind(rule.turns_age)} >= year(known_since)")
    else:
        assert rule.trigger is not None
        opened = ("SELECT customer_id, occurred_at AS opened_at, administrator, doctor, "
                  "TRY_CAST((properties->>'scheduled_at') AS TIMESTAMPTZ) AS scheduled_at, "
                  "row_number() OVER (PARTITION BY customer_id ORDER BY occurred_at DESC, seq DESC) AS from_last "
                  f"FROM touchpoints t WHERE customer_id IS NOT NULL AND occurred_at <= {now} AND "
                  f"{_match(rule.trigger, bind)}")
        if rule.last_only:
            opened = f"SELECT * EXCLUDE (from_last) FROM ({opened}) WHERE from_last = 1"
        else:
            opened = f"SELECT * EXCLUDE (from_last) FROM ({opened})"
    due = f"o.opened_at + to_seconds({bind(parse_duration(rule.due_after))})"
    if rule.deadline_before_scheduled is not None:
        deadline = f"coalesce(o.scheduled_at - to_seconds({bind(parse_duration(rule.deadline_before_scheduled))}), {due})"
    else:
        deadline = f"{due} + to_seconds({bind(parse_duration(rule.window))})"
    done = (f"(SELECT min(t.occurred_at) FROM touchpoints t WHERE t.customer_id = o.customer_id "
            f"AND t.occurred_at > o.opened_at AND t.occurred_at <= {now} AND {_match(rule.done, bind)})")
    cancel = (f"(SELECT min(t.occurred_at) FROM touchpoints t WHERE t.customer_id = o.customer_id "
              f"AND t.occurred_at > o.opened_at AND t.occurred_at <= {now} AND {_match(rule.cancel, bind)})"
              if rule.cancel is not None else "NULL::TIMESTAMPTZ")
    held = holdout_sql(bind(name), "o.customer_id", bind(rule.holdout))
    return f"""
        SELECT {bind(name)} AS rule, o.customer_id, {owner} AS owner, o.opened_at, {due} AS due_at,
               {deadline} AS deadline, {done} AS done_at, {cancel} AS cancelled_at, {held} AS held_out
        FROM ({opened}) o"""


@dataclass(frozen=True)
class Task:
    rule: str
    customer_id: str
    owner: str
    status: str
    due_at: datetime
    deadline: datetime
    done_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()}


def tasks_table(con: duckdb.DuckDBPyConnection, model: WorklistModel, now: datetime) -> None:
    """Every task of every rule at ``now`` into the temporary table ``worklist_tasks``
    (rule, customer_id, owner, opened_at, due_at, deadline, done_at, cancelled_at, held_out, status)."""
    bind = Binder("w")
    moment = f"{bind(now)}::TIMESTAMPTZ"
    union = " UNION ALL ".join(_rule_sql(name, rule, bind, moment) for name, rule in model.rules.items())
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE worklist_tasks AS
        SELECT *, CASE
            WHEN done_at IS NOT NULL AND (cancelled_at IS NULL OR done_at <= cancelled_at) THEN 'done'
            WHEN cancelled_at IS NOT NULL THEN 'not_needed'
            WHEN held_out THEN 'held_out'
            WHEN {moment} >= deadline THEN 'overdue'
            ELSE 'due' END AS status
        FROM ({union})
        WHERE due_at <= {moment}
          -- cancelled before it was due (the patient booked in time): it never was a task
          AND NOT (cancelled_at IS NOT NULL AND cancelled_at <= due_at AND done_at IS NULL)
    """, bind.values)


def tasks(con: duckdb.DuckDBPyConnection, model: WorklistModel, now: datetime | None = None, *,
          rule: str | None = None, owner: str | None = None) -> tuple[datetime, list[Task]]:
    """The tasks at ``now`` (default: the latest touch in the data), filtered by rule and owner."""
    if rule is not None and rule not in model.rules:
        raise InputError(f"no rule {rule!r}; the rules are {', '.join(model.rules)}")
    moment = data_now(con, now)
    tasks_table(con, model, moment)
    rows = con.execute(
        "SELECT rule, customer_id, owner, status, due_at, deadline, done_at FROM worklist_tasks "
        "WHERE ($rule IS NULL OR rule = $rule) AND ($owner IS NULL OR owner = $owner) "
        "ORDER BY deadline, rule, customer_id", {"rule": rule, "owner": owner}).fetchall()
    return moment, [Task(*row) for row in rows]


def rule_for_purpose(model: WorklistModel, rule: str | None, purpose: str | None) -> str:
    """The rule named, or the one rule whose ``done`` is a message with ``purpose``."""
    if (rule is None) == (purpose is None):
        raise InputError("name the outreach: --rule R or --purpose P (one of them)")
    if rule is not None:
        if rule not in model.rules:
            raise InputError(f"no rule {rule!r}; the rules are {', '.join(model.rules)}")
        return rule
    matching = [name for name, r in model.rules.items() if purpose in (r.done.purpose or [])]
    if len(matching) != 1:
        raise InputError(f"--purpose {purpose!r} matches {len(matching)} rules ({', '.join(matching) or 'none'}); "
                         "name one with --rule")
    return matching[0]


def task_rates(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Per rule and owner, from ``worklist_tasks``: tasks by status, and the done and
    overdue rates among the tasks the worklist gave out (not the held-out ones)."""
    rows = con.execute("""
        SELECT rule, owner, count(*) FILTER (WHERE NOT held_out) AS given,
               count(*) FILTER (WHERE status = 'done' AND NOT held_out) AS done,
               count(*) FILTER (WHERE status = 'overdue') AS overdue,
               count(*) FILTER (WHERE status = 'due') AS due,
               count(*) FILTER (WHERE status = 'not_needed' AND NOT held_out) AS not_needed,
               count(*) FILTER (WHERE held_out) AS held_out
        FROM worklist_tasks GROUP BY ALL ORDER BY rule, owner
    """).fetchall()
    out = []
    for rule, owner, given, done, overdue, due, not_needed, held_out in rows:
        decided = done + overdue
        out.append({"rule": rule, "owner": owner, "tasks": given, "done": done, "overdue": overdue, "due": due,
                    "not_needed": not_needed, "held_out": held_out,
                    "done_rate": done / decided if decided else None,
                    "overdue_rate": overdue / decided if decided else None})
    return out
