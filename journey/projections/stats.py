"""The statistics a manager acts on: one definition of each test and correction.

Points of failure and month-over-month changes use the same two-proportion test and
the same Benjamini-Hochberg correction, so "significant" means one thing in the report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["ALPHA", "MIN_GROUP", "benjamini_hochberg", "two_proportion_p"]

MIN_GROUP = 30
"""A value is tested only with at least this many decided customers in it and outside it."""
ALPHA = 0.05
"""The false discovery rate (Benjamini-Hochberg over every test of a table)."""


def benjamini_hochberg(p_values: Sequence[float | None]) -> list[float | None]:
    """Benjamini-Hochberg adjusted p-values (q-values) of the tests made (None: not tested)."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 1.0
    for rank in range(len(tested), 0, -1):
        p, i = tested[rank - 1]
        running = min(running, p * len(tested) / rank)
        adjusted[i] = running
    return adjusted


def two_proportion_p(failed_in: int, n_in: int, failed_out: int, n_out: int) -> float | None:
    """Two-sided p-value of a two-proportion z-test (pooled), or None when either group
    has fewer than ``MIN_GROUP`` customers or fewer than 5 expected in a cell."""
    if n_in < MIN_GROUP or n_out < MIN_GROUP:
        return None
    pooled = (failed_in + failed_out) / (n_in + n_out)
    if min(n_in, n_out) * min(pooled, 1 - pooled) < 5:
        return None
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_in + 1 / n_out))
    z = (failed_in / n_in - failed_out / n_out) / se
    return math.erfc(abs(z) / math.sqrt(2))
