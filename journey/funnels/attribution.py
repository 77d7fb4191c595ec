"""Channel attribution: which channels bring the patients who convert (and who stay).

A journey is a customer's own marketing touches (ad clicks, referrals, inbound calls,
forms and inbound messages that carry a channel) in ``seq`` order, up to the first
touch of the *conversion* step (default: the first ``visit``; ``stage:retention`` asks
which channels bring patients who come back). Models, side by side, in conversions:

- first-touch, last-touch, linear (1/n each);
- time-decay: weight 2^(-age / half-life) (age: time before the conversion; half-life 7 days);
- position-based: 40% first, 40% last, 20% shared by the middle (50/50 for two touches);
- Markov removal effect: a first-order chain over channels (start, channels, conversion,
  null) from every journey, converted or not; a channel's credit is the drop in the
  probability of converting when it is removed, shared out over the conversions.

The per-touch work is SQL; only the channel-to-channel transition counts (a few dozen
rows) come to Python for the Markov chain.
"""

from __future__ import annotations

from collections import defaultdict

import duckdb
from pydantic import BaseModel, ConfigDict

from journey.funnels.model import Step

__all__ = ["ChannelCredit", "AttributionResult", "attribute", "removal_effects"]

HALF_LIFE_DAYS = 7.0
_JOURNEY_TYPES = ("ad_click", "referral", "call", "form", "message")
_START, _CONVERSION, _NULL = "(start)", "(conversion)", "(null)"


class ChannelCredit(BaseModel):
    model_config = ConfigDict(frozen=True)

    channel: str
    first_touch: float
    last_touch: float
    linear: float
    time_decay: float
    position_based: float
    markov: float


class AttributionResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    conversion: str
    journeys: int
    """Customers with at least one marketing touch (converted or not)."""
    conversions: int
    """Converted journeys (each model shares out exactly this many)."""
    conversions_without_touches: int
    channels: tuple[ChannelCredit, ...]


_PATHS = """
CREATE OR REPLACE TEMP TABLE attribution_paths AS
WITH conv AS (
    SELECT customer_id, min(occurred_at) AS converted_at FROM touchpoints
    WHERE customer_id IS NOT NULL AND $match GROUP BY customer_id
), touches AS (
    SELECT t.customer_id, t.channel, t.seq, t.occurred_at, c.converted_at
    FROM touchpoints t LEFT JOIN conv c USING (customer_id)
    WHERE t.customer_id IS NOT NULL AND t.channel IS NOT NULL AND t.type IN $types
      AND coalesce(t.direction, 'inbound') = 'inbound'
      AND (c.converted_at IS NULL OR t.occurred_at < c.converted_at)
)
SELECT customer_id, converted_at IS NOT NULL AS converted, list(channel ORDER BY seq) AS channels,
    list((epoch_us(converted_at) - epoch_us(occurred_at)) / 86400e6 ORDER BY seq) AS age_days
FROM touches GROUP BY customer_id, converted_at
"""

_HEURISTICS = """
WITH p AS (
    SELECT customer_id, unnest(channels) AS channel, generate_subscripts(channels, 1) AS i,
        len(channels) AS n, pow(2, -unnest(age_days) / $half_life) AS decay
    FROM attribution_paths WHERE converted
), w AS (
    SELECT *, decay / sum(decay) OVER (PARTITION BY customer_id) AS decay_share FROM p
)
SELECT channel,
    count(*) FILTER (WHERE i = 1) AS first_touch,
    count(*) FILTER (WHERE i = n) AS last_touch,
    sum(1.0 / n) AS linear,
    sum(decay_share) AS time_decay,
    sum(CASE WHEN n = 1 THEN 1.0 WHEN n = 2 THEN 0.5 WHEN i = 1 OR i = n THEN 0.4 ELSE 0.2 / (n - 2) END) AS position_based
FROM w GROUP BY channel
"""


def attribute(con: duckdb.DuckDBPyConnection, conversion: Step | None = None) -> AttributionResult:
    """Every model over the ``touchpoints`` of ``con`` (a projection or snapshot)."""
    conversion = conversion or Step(name="visit")
    column = {"activity": "activity", "stage": "stage"}[conversion.kind]
    types = "(" + ", ".join(f"'{t}'" for t in _JOURNEY_TYPES) + ")"  # our constants
    con.execute(_PATHS.replace("$match", f"{column} = $name").replace("$types", types), {"name": conversion.name})
    heuristics = con.execute(_HEURISTICS, {"half_life": HALF_LIFE_DAYS}).fetchall()
    journeys, conversions = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE converted) FROM attribution_paths").fetchone()
    total = con.execute(
        f"SELECT count(DISTINCT customer_id) FROM touchpoints WHERE customer_id IS NOT NULL AND {column} = $name",
        {"name": conversion.name}).fetchone()[0]
    markov = _markov(con, conversions)
    channels = sorted({row[0] for row in heuristics} | set(markov))
    by_channel = {row[0]: row for row in heuristics}
    credits = []
    for channel in channels:
        row = by_channel.get(channel, (channel, 0, 0, 0.0, 0.0, 0.0))
        credits.append(ChannelCredit(channel=channel, first_touch=row[1], last_touch=row[2], linear=row[3],
                                     time_decay=row[4], position_based=row[5], markov=markov.get(channel, 0.0)))
    credits.sort(key=lambda c: (-c.markov, c.channel))
    con.execute("DROP TABLE IF EXISTS attribution_paths")
    return AttributionResult(conversion=conversion.label, journeys=journeys, conversions=conversions,
                             conversions_without_touches=total - conversions, channels=tuple(credits))


def _markov(con: duckdb.DuckDBPyConnection, conversions: int) -> dict[str, float]:
    rows = con.execute(f"""
        SELECT source, target, count(*) FROM (
            SELECT list_prepend('{_START}', list_append(channels, CASE WHEN converted THEN '{_CONVERSION}'
                   ELSE '{_NULL}' END)) AS path FROM attribution_paths
        ), LATERAL (SELECT unnest(path[:-2]) AS source, unnest(path[2:]) AS target)
        GROUP BY ALL
    """).fetchall()
    transitions: dict[str, dict[str, int]] = defaultdict(dict)
    for source, target, count in rows:
        transitions[source][target] = count
    effects = removal_effects(transitions)
    share = sum(effects.values())
    return {c: conversions * e / share if share else 0.0 for c, e in effects.items()}


def removal_effects(transitions: dict[str, dict[str, int]]) -> dict[str, float]:
    """Channel -> 1 - P(convert without it) / P(convert), for a chain given as transition
    counts from ``(start)`` through channels to ``(conversion)`` or ``(null)``."""
    channels = sorted(s for s in transitions if s != _START)
    base = _conversion_probability(transitions, None)
    if base == 0:
        return {c: 0.0 for c in channels}
    return {c: max(0.0, 1 - _conversion_probability(transitions, c) / base) for c in channels}


def _conversion_probability(transitions: dict[str, dict[str, int]], removed: str | None) -> float:
    """P(reaching conversion from start), by fixed-point iteration (the chain is small)."""
    probability = {state: 0.0 for state in transitions}
    probability[_CONVERSION] = 1.0
    totals = {s: sum(targets.values()) for s, targets in transitions.items()}
    for _ in range(10_000):
        change = 0.0
        for state, targets in transitions.items():
            if state == removed:
                continue
            value = sum(n * (0.0 if t == removed else probability.get(t, 0.0)) for t, n in targets.items())
            value /= totals[state]
            change = max(change, abs(value - probability[state]))
            probability[state] = value
        if change < 1e-12:
            break
    return probability.get(_START, 0.0)
