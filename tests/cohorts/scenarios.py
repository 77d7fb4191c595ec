"""Touches in the projection's shape for PostHog's scenarios: (customer, moment[, activity])."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import duckdb


def touchpoints(rows: Sequence[tuple[str, str] | tuple[str, str, str]], default: str = "pageview",
                con: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyConnection:
    con = con or duckdb.connect()
    con.execute("CREATE OR REPLACE TABLE touchpoints (customer_id VARCHAR, type VARCHAR, activity VARCHAR, "
                "stage VARCHAR, occurred_at TIMESTAMPTZ)")
    for row in rows:
        customer, moment, activity = (*row, default)[:3]
        when = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        if when.tzinfo is None:  # PostHog's tests write UTC moments without an offset
            when = when.replace(tzinfo=UTC)
        con.execute("INSERT INTO touchpoints VALUES (?, 'custom', ?, NULL, ?)", [customer, activity, when])
    return con
