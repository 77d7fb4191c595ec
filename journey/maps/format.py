"""How figures read for a manager: money with thousands separators and its currency,
durations in minutes, hours or days, shares as percentages, significance in words.
The report and the command line both print through here."""

from __future__ import annotations

__all__ = ["cell", "count", "display_rows", "duration", "figure", "money", "share", "significance"]


def money(value: float | None, currency: str | None) -> str:
    """``1,460,000 RUB``; ``not known`` for None."""
    if value is None:
        return "not known"
    return f"{value:,.0f} {currency or ''}".strip()


def count(value: float | None) -> str:
    return "not known" if value is None else f"{value:,.0f}"


def share(value: float | None) -> str:
    """``10.9%``."""
    return "not known" if value is None else f"{value:.1%}"


def duration(seconds: float | None) -> str:
    """``45 seconds``, ``12 minutes``, ``5.5 hours``, ``4 days``, ``7 months``."""
    if seconds is None:
        return "not known"
    if seconds < 90:
        return f"{seconds:.0f} seconds"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 36 * 3600:
        hours = seconds / 3600
        return f"{hours:.1f} hours" if hours < 10 else f"{hours:.0f} hours"
    days = seconds / 86400
    if days < 60:
        return f"{days:.1f} days" if days < 10 else f"{days:.0f} days"
    return f"{days / 30.44:.0f} months"


def figure(value: float | None, unit: str | None) -> str:
    """A ``clinic_metrics`` result in its unit."""
    if value is None:
        return "not known"
    if unit == "share":
        return share(value)
    if unit == "count":
        return count(value)
    if unit == "ratio":
        return f"{value:,.2f}"
    if unit == "rating":
        return f"{value:.1f} of 5"
    return money(value, unit)


def significance(lift: float | None, entered: int, q_value: float | None, alpha: float = 0.05) -> str:
    """``1.5x as often, 144 patients, very unlikely to be chance`` and the like."""
    times = "" if lift is None else f"{lift:.1f}x as often, "
    if q_value is None:
        verdict = "too few patients to tell"
    elif q_value < alpha / 50:
        verdict = "very unlikely to be chance"
    elif q_value < alpha:
        verdict = "unlikely to be chance"
    else:
        verdict = "could be chance"
    return f"{times}{entered:,} patients, {verdict}"


_SHARE_COLUMNS = ("rate", "share", "conversion")


def cell(column: str, value: object, unit: str | None = None) -> str:
    """One value of an analysis table as a person reads it, by its column's name:
    ``*seconds*`` as a duration, rates, shares and conversions as percentages, ``lift``
    as ``1.5x``, p- and q-values in two digits, ``result`` in its ``unit``, large
    numbers with thousands separators (never ``1.46e+06``)."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if "seconds" in column:
        return duration(float(value))
    if column == "result":
        return figure(float(value), unit)
    if column.endswith(_SHARE_COLUMNS) or column.startswith("conversion"):
        return share(float(value))
    if column == "lift":
        return f"{value:.2f}x"
    if column in ("p_value", "q_value"):
        return f"{value:.2g}"
    if isinstance(value, int) or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.3g}"


def display_rows(columns: list[str], rows: list[tuple[object, ...]]) -> list[list[str]]:
    """Every cell of a table through ``cell`` (``result`` takes the row's ``unit``)."""
    unit_at = columns.index("unit") if "unit" in columns else None
    return [[cell(c, v, None if unit_at is None else row[unit_at]) for c, v in zip(columns, row, strict=True)]
            for row in rows]
