"""What changed: each stage's loss rate month by month, and the latest decided month
against the one before it.

A patient belongs to the month (UTC) in which they entered the stage. A month is
*decided* for a stage once every patient who entered in it has had the stage's whole
SLA to move on (the month's end plus the SLA is at or before the end of the data): its
loss rate is final, so comparing it with an earlier month compares like with like. A
month still deciding is shown with its patients in progress and never compared.

- ``stage_months``: stage, month, entered, lost, moved_on, in_progress, decided.
- ``stage_changes``: per stage, the latest decided month against the previous decided
  month: both loss rates, the change in points, a two-proportion test, and the
  Benjamini-Hochberg q-value over these comparisons and the points of failure together
  (``journey.projections.failure`` corrects and writes both); ``significant`` when
  q < ``stats.ALPHA``; ``worse`` when the rate rose. ``owners``
  are the dimensions that own moving on from the stage (the stage model's).

Reads the month counts, the temporary ``stage_order`` and ``data_end`` of
``journey.projections.failure``, inside the same derive.
"""

from __future__ import annotations

import duckdb

from journey.projections.stats import two_proportion_p

__all__ = ["CHANGE_COLUMNS", "month_decided", "stage_change_rows"]

_MONTHS = """
CREATE OR REPLACE TABLE stage_months AS
SELECT o.stage, CAST(m.stage_order AS INTEGER) AS stage_order, o.next_stage, m.month, m.entered, m.lost,
    m.moved_on, m.in_progress, $decided AS decided
FROM $counts m JOIN stage_order o USING (stage_order) CROSS JOIN data_end a
ORDER BY stage_order, month
"""


def month_decided(month: str, sla_seconds: str, as_of: str) -> str:
    """Whether every patient who entered a stage in ``month`` has had its whole SLA by
    ``as_of`` (SQL)."""
    return f"({month} + INTERVAL 1 MONTH) AT TIME ZONE 'UTC' + to_seconds({sla_seconds}) <= {as_of}"


_LATEST_TWO = """
WITH ranked AS (
    SELECT m.*, row_number() OVER (PARTITION BY stage ORDER BY month DESC) AS back
    FROM stage_months m WHERE decided
)
SELECT l.stage, l.next_stage, o.owners, l.month, l.entered, l.lost, p.month, p.entered, p.lost
FROM ranked l JOIN ranked p ON p.stage = l.stage AND p.back = 2
JOIN stage_order o ON o.stage = l.stage
WHERE l.back = 1
ORDER BY l.stage_order
"""

CHANGE_COLUMNS = ("stage VARCHAR, next_stage VARCHAR, owners VARCHAR[], month DATE, entered BIGINT, lost BIGINT, "
            "loss_rate DOUBLE, previous_month DATE, previous_entered BIGINT, previous_lost BIGINT, "
            "previous_loss_rate DOUBLE, change_points DOUBLE, p_value DOUBLE, q_value DOUBLE, "
            "significant BOOLEAN, worse BOOLEAN")


def stage_change_rows(con: duckdb.DuckDBPyConnection, counts: str) -> list[list[object]]:
    """(Re)write ``stage_months`` from ``counts`` (per stage with an SLA and a next stage, and
    month entered: entered, lost, moved_on, in_progress); the rows of ``stage_changes`` up
    to the p-value."""
    con.execute(_MONTHS.replace("$decided", month_decided("m.month", "o.sla_seconds", "a.as_of"))
                .replace("$counts", counts))
    rows: list[list[object]] = []
    for stage, next_stage, owners, month, entered, lost, before, before_entered, before_lost in \
            con.execute(_LATEST_TWO).fetchall():
        rate, before_rate = lost / entered, before_lost / before_entered
        rows.append([stage, next_stage, owners, month, entered, lost, rate, before, before_entered, before_lost,
                     before_rate, 100 * (rate - before_rate),
                     two_proportion_p(lost, entered, before_lost, before_entered)])
    return rows
