"""Cohort commands on the published projection: retention and lifecycle (PostHog's
semantics, docs/cohorts.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from journey.cli._common import adapters, echo_json, moment, print_table

__all__ = ["COMMANDS"]


def _calendar_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--period", type=click.Choice(["day", "week", "month"]), default="week", show_default=True),
        click.option("--from", "start", help="the first period holds this date or moment (default: counted back "
                     "from --to)"),
        click.option("--to", "end", help="the last period holds this date or moment (default: the latest touch "
                     "in the data)"),
        click.option("--timezone", default="UTC", show_default=True, help="the clinic's IANA time zone for "
                     "periods, e.g. Europe/Moscow"),
        click.option("--week-start", type=click.Choice(["monday", "sunday"]), default="monday", show_default=True),
        click.option("--json", "as_json", is_flag=True, help="print the result as JSON"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command()
@click.option("--start", "start_event", default="any", show_default=True,
              help="the event that puts a customer in a cohort: a touch type, an activity, stage:NAME or any")
@click.option("--return", "return_event", default="any", show_default=True,
              help="the event that counts as coming back (same forms as --start)")
@click.option("--intervals", type=int, default=11, show_default=True, help="periods per cohort, the first included")
@click.option("--first-time", is_flag=True, help="a customer only in the cohort of their first-ever start event")
@click.option("--by", type=click.Choice(["first_channel", "first_visit_doctor"]), default=None,
              help="break down by the customer's first channel or first-visit doctor")
@_calendar_options
def retention(start_event: str, return_event: str, intervals: int, first_time: bool, by: str | None,
              period: str, start: str | None, end: str | None, timezone: str, week_start: str,
              as_json: bool) -> None:
    """Of the customers who did --start in a period, how many did --return in each later one."""
    from journey.cohorts.periods import Calendar, parse_event
    from journey.cohorts.retention import retention as compute
    from journey.projections.publish import open_snapshot

    calendar = Calendar(period, timezone, week_start)  # type: ignore[arg-type]
    with open_snapshot(adapters().analytics) as con:
        result = compute(con, parse_event(start_event, "--start"), parse_event(return_event, "--return"),
                         calendar, intervals, start=moment(start, "--from"), end=moment(end, "--to"),
                         first_time=first_time, by=by)
    if as_json:
        echo_json(result.to_dict())
        return
    _print_cohorts(result.cohorts, period)
    for value, cohorts in (result.breakdown or {}).items():
        click.echo(f"\n{by} = {value}")
        _print_cohorts(cohorts, period)


def _print_cohorts(cohorts: list[Any], period: str) -> None:
    width = max((len(c.retained) for c in cohorts), default=0)
    print_table(["cohort", "size", *(f"{period} {k}" for k in range(width))],
                [(c.start.isoformat(), c.size, *c.retained) for c in cohorts])


@click.command()
@click.option("--event", default="any", show_default=True,
              help="what counts as active: a touch type, an activity, stage:NAME or any")
@click.option("--periods", type=int, default=8, show_default=True, help="periods shown when --from is not given")
@click.option("--by", type=click.Choice(["first_channel", "first_visit_doctor"]), default=None,
              help="break down by the customer's first channel or first-visit doctor")
@_calendar_options
def lifecycle(event: str, periods: int, by: str | None, period: str, start: str | None, end: str | None,
              timezone: str, week_start: str, as_json: bool) -> None:
    """Per period: new, returning, resurrecting and dormant customers."""
    from journey.cohorts.lifecycle import lifecycle as compute
    from journey.cohorts.periods import Calendar, parse_event
    from journey.projections.publish import open_snapshot

    calendar = Calendar(period, timezone, week_start)  # type: ignore[arg-type]
    with open_snapshot(adapters().analytics) as con:
        result = compute(con, parse_event(event), calendar, start=moment(start, "--from"), end=moment(end, "--to"),
                         periods=periods, by=by)
    if as_json:
        echo_json(result.to_dict())
        return
    _print_periods(result.periods)
    for value, part in (result.breakdown or {}).items():
        click.echo(f"\n{by} = {value}")
        _print_periods(part)


def _print_periods(periods: list[Any]) -> None:
    print_table(["period", "new", "returning", "resurrecting", "dormant"],
                [(p.start.isoformat(), p.new, p.returning, p.resurrecting, p.dormant) for p in periods])


COMMANDS = (retention, lifecycle)
