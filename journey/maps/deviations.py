"""Actual versus ideal: where real journeys deviate from the ideal one, in DuckDB SQL.

Three kinds of deviation, per customer (``ideal_deviations``) and in aggregate
(``ideal_summary``), both temporary tables on the caller's connection (the published
snapshot is read-only; ``journey ideal --out`` saves them):

* ``missing_step``: a required step did not happen although the step(s) that make it
  expected did (booked, never reminded);
* ``out_of_order``: a step first happened only after a step the ideal puts later (each
  step counts at its first occurrence: the first reminder came for a repeat booking, after
  the first visit);
* ``missed_deadline``: the next ``to`` touch came too late, too early (``at_least``) or,
  for ``within``, never although the deadline has passed by the end of the data.

Every name and value from the model file reaches SQL as a bound parameter; field names
are validated identifiers, quoted, and only the touchpoints columns below are columns,
other names are looked up in the touch's ``properties``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from journey.maps.filters import JourneyFilter, compile_customers, identifier
from journey.maps.ideal import IdealJourney, Matcher

__all__ = ["COLUMNS", "IdealResult", "SummaryRow", "compare", "save_deviations", "write_deviations_csv"]

COLUMNS = frozenset({"type", "channel", "source", "direction", "purpose", "answered", "outcome", "status",
                     "rating", "doctor", "administrator", "branch", "campaign"})
"""``where`` names that are touchpoints columns; any other name is a touch property."""

_SCHEMA = """
CREATE OR REPLACE TEMP TABLE ideal_moments (customer_id VARCHAR, moment VARCHAR, seq BIGINT,
    occurred_at TIMESTAMPTZ);
CREATE OR REPLACE TEMP TABLE ideal_deviations (customer_id VARCHAR, kind VARCHAR, item VARCHAR,
    other VARCHAR, occurred_at TIMESTAMPTZ, seconds DOUBLE);
CREATE OR REPLACE TEMP TABLE ideal_summary (item_order INTEGER, kind VARCHAR, item VARCHAR,
    label VARCHAR, owner VARCHAR, expected BIGINT, deviated BIGINT, share DOUBLE)
"""

_FIRST = """
CREATE OR REPLACE TEMP TABLE ideal_first AS
SELECT customer_id, moment, min(seq) AS seq, min(occurred_at) AS occurred_at
FROM ideal_moments WHERE list_contains(?::VARCHAR[], moment) GROUP BY ALL
"""

_MISSING = """
INSERT INTO ideal_deviations
SELECT customer_id, 'missing_step', ?, NULL, NULL, NULL FROM ideal_scope
WHERE (len(?::VARCHAR[]) = 0 OR customer_id IN (SELECT customer_id FROM ideal_first WHERE list_contains(?::VARCHAR[], moment)))
  AND customer_id NOT IN (SELECT customer_id FROM ideal_first WHERE moment = ?)
"""

_EXPECTED = """
SELECT count(*) FROM ideal_scope WHERE len(?::VARCHAR[]) = 0
    OR customer_id IN (SELECT customer_id FROM ideal_first WHERE list_contains(?::VARCHAR[], moment))
"""

_OUT_OF_ORDER = """
INSERT INTO ideal_deviations
SELECT late.customer_id, 'out_of_order', late.moment, arg_min(early.moment, early_rank.i),
    late.occurred_at, NULL
FROM ideal_first late
JOIN (SELECT unnest(?::VARCHAR[]) AS moment, unnest(range(len(?::VARCHAR[]))) AS i) late_rank USING (moment)
JOIN ideal_first early ON early.customer_id = late.customer_id AND early.seq < late.seq
JOIN (SELECT unnest(?::VARCHAR[]) AS moment, unnest(range(len(?::VARCHAR[]))) AS i) early_rank
  ON early_rank.moment = early.moment AND early_rank.i > late_rank.i
GROUP BY late.customer_id, late.moment, late.occurred_at
"""
"""A step (``late``) that first happened after a step the ideal puts after it (``other``:
the earliest such step in the ideal order), e.g. the first reminder came after the first visit."""

_PAIRS = """
CREATE OR REPLACE TEMP TABLE ideal_pairs AS
SELECT f.customer_id, f.occurred_at,
    (epoch_us(arg_min(t.occurred_at, t.seq)) - epoch_us(f.occurred_at)) / 1e6 AS seconds
FROM (SELECT * FROM {source} WHERE moment = ?) f
LEFT JOIN ideal_moments t ON t.customer_id = f.customer_id AND t.moment = ? AND t.seq > f.seq
GROUP BY f.customer_id, f.seq, f.occurred_at
"""

_MISSED_WITHIN = """
INSERT INTO ideal_deviations
SELECT customer_id, 'missed_deadline', ?, ?, occurred_at, seconds FROM ideal_pairs
WHERE seconds > ? OR (seconds IS NULL AND (SELECT max(occurred_at) FROM touchpoints) > occurred_at + to_seconds(?))
"""

_MISSED_AT_LEAST = """
INSERT INTO ideal_deviations
SELECT customer_id, 'missed_deadline', ?, ?, occurred_at, seconds FROM ideal_pairs WHERE seconds < ?
"""


@dataclass(frozen=True)
class SummaryRow:
    """One line of the comparison a manager reads."""

    kind: str
    item: str
    label: str
    owner: str
    expected: int
    deviated: int

    @property
    def share(self) -> float:
        return self.deviated / self.expected if self.expected else 0.0


@dataclass(frozen=True)
class IdealResult:
    """The aggregate; the per-customer rows stay in the ``ideal_deviations`` temp table."""

    model: IdealJourney
    customers: int
    deviating: int
    rows: tuple[SummaryRow, ...]


def _condition(name: str, value: str | bool | int) -> tuple[str, list[Any]]:
    if name in COLUMNS:
        return f"{identifier(name)} = ?", [value]
    identifier(name)
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return "json_extract_string(properties, ?) = ?", [f"$.{name}", text]


def _collect(con: duckdb.DuckDBPyConnection, name: str, matcher: Matcher) -> None:
    where, params = ["customer_id IN (SELECT customer_id FROM ideal_scope)",
                     "list_contains(?::VARCHAR[], activity)"], [list(matcher.activities)]
    for field, value in sorted(matcher.where.items()):
        sql, bound = _condition(field, value)
        where.append(sql)
        params.extend(bound)
    con.execute("INSERT INTO ideal_moments SELECT customer_id, ?, seq, occurred_at FROM touchpoints WHERE "
                + " AND ".join(where), [name, *params])


def compare(con: duckdb.DuckDBPyConnection, model: IdealJourney,
            journey_filter: JourneyFilter | None = None) -> IdealResult:
    """Fill ``ideal_deviations`` and ``ideal_summary`` for the filtered customers."""
    scope, params = compile_customers(journey_filter or JourneyFilter())
    con.execute(_SCHEMA)
    con.execute(f"CREATE OR REPLACE TEMP TABLE ideal_scope AS {scope}", params)
    for name, matcher in model.matchers().items():
        _collect(con, name, matcher)
    steps = [s.id for s in model.steps]
    con.execute(_FIRST, [steps])
    rows = _missing(con, model) + _out_of_order(con, model) + _deadlines(con, model)
    customers = con.execute("SELECT count(*) FROM ideal_scope").fetchone()[0]
    deviating = con.execute("SELECT count(DISTINCT customer_id) FROM ideal_deviations").fetchone()[0]
    con.executemany("INSERT INTO ideal_summary VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [[i, r.kind, r.item, r.label, r.owner, r.expected, r.deviated, r.share]
                     for i, r in enumerate(rows)])
    for table in ("ideal_moments", "ideal_first", "ideal_pairs", "ideal_scope"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return IdealResult(model, customers, deviating, tuple(rows))


def _count(con: duckdb.DuckDBPyConnection, kind: str, item: str) -> int:
    return con.execute("SELECT count(*) FROM ideal_deviations WHERE kind = ? AND item = ?",
                       [kind, item]).fetchone()[0]


def _missing(con: duckdb.DuckDBPyConnection, model: IdealJourney) -> list[SummaryRow]:
    rows = []
    for index, step in enumerate(model.steps):
        if step.optional:
            continue
        after = list(model.expected_after(index))
        con.execute(_MISSING, [step.id, after, after, step.id])
        expected = con.execute(_EXPECTED, [after, after]).fetchone()[0]
        rows.append(SummaryRow("missing_step", step.id, step.label or step.id, "", expected,
                               _count(con, "missing_step", step.id)))
    return rows


def _out_of_order(con: duckdb.DuckDBPyConnection, model: IdealJourney) -> list[SummaryRow]:
    steps = [s.id for s in model.steps]
    con.execute(_OUT_OF_ORDER, [steps, steps, steps, steps])
    present = dict(con.execute("SELECT moment, count(*) FROM ideal_first GROUP BY 1").fetchall())
    return [SummaryRow("out_of_order", s.id, s.label or s.id, "", present.get(s.id, 0),
                       _count(con, "out_of_order", s.id)) for s in model.steps[:-1]]


def _deadlines(con: duckdb.DuckDBPyConnection, model: IdealJourney) -> list[SummaryRow]:
    steps = {s.id for s in model.steps}
    rows = []
    for d in model.deadlines:
        source = "ideal_first" if d.from_ in steps else "ideal_moments"
        con.execute(_PAIRS.format(source=source), [d.from_, d.to])
        if d.within is not None:
            con.execute(_MISSED_WITHIN, [d.id, d.to, d.seconds, d.seconds])
        else:
            con.execute(_MISSED_AT_LEAST, [d.id, d.to, d.seconds])
        evaluated = con.execute("SELECT count(*) FROM ideal_pairs WHERE seconds IS NOT NULL OR ?",
                                [d.within is not None]).fetchone()[0]
        rows.append(SummaryRow("missed_deadline", d.id, d.label, d.owner, evaluated,
                               _count(con, "missed_deadline", d.id)))
    return rows


def write_deviations_csv(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """The per-customer deviations ``compare`` computed on ``con``, as CSV."""
    cursor = con.execute("SELECT * FROM temp.ideal_deviations ORDER BY customer_id, kind, item")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([d[0] for d in cursor.description])
        writer.writerows(cursor.fetchall())


def save_deviations(con: duckdb.DuckDBPyConnection, catalog: str) -> None:
    """Keep ``ideal_deviations`` and ``ideal_summary`` in the writable ``catalog`` (a
    snapshot opened with an output file); the snapshot itself stays read-only."""
    for table in ("ideal_deviations", "ideal_summary"):
        con.execute(f"CREATE OR REPLACE TABLE {catalog}.main.{table} AS SELECT * FROM temp.{table}")
