"""Commands that analyse the published projection: funnels, points of failure, clinic
metrics and attribution. They read the snapshot read-only, beside a running projector."""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from journey.cli._common import adapters, echo_json, print_table
from journey.errors import InputError

if TYPE_CHECKING:
    from journey.funnels.model import Breakdown, FunnelRequest, StepResult

__all__ = ["COMMANDS"]


def _breakdown(by: str | None, touch: str) -> Breakdown | None:
    from journey.funnels.model import Breakdown

    if by is None:
        return None
    if touch.startswith("step:"):
        index = touch.removeprefix("step:")
        if not index.isdigit():
            raise InputError(f"--by-touch {touch!r}: use first, last or step:N (N numbered from 0)")
        return Breakdown(column=by, touch="step", step=int(index))
    if touch not in ("first", "last"):
        raise InputError(f"--by-touch {touch!r}: use first, last or step:N (N numbered from 0)")
    return Breakdown(column=by, touch=touch)


def _request(steps: str, window: str, mode: str, exclude: tuple[str, ...], by: str | None,
             by_touch: str) -> FunnelRequest:
    from pydantic import ValidationError

    from journey.funnels.model import FunnelRequest, parse_exclusion, parse_step
    from journey.projections.stage_model import parse_duration

    try:
        return FunnelRequest(steps=[parse_step(s) for s in steps.split(",")], window_seconds=parse_duration(window),
                             mode=mode, exclusions=[parse_exclusion(x) for x in exclude],
                             breakdown=_breakdown(by, by_touch))
    except ValidationError as error:
        raise InputError(f"{error.errors()[0]['msg']}") from None


def _print_steps(steps: Sequence[StepResult]) -> None:
    print_table(["step", "name", "customers", "dropped", "from_previous", "from_first", "median_seconds"],
                [(s.index, s.name, s.count, s.dropped, s.conversion_from_previous, s.conversion_from_first,
                  s.median_seconds_to_convert) for s in steps])


def _write_ids(customers: list[str], out: str | None) -> None:
    stream = open(out, "w", newline="", encoding="utf-8") if out else sys.stdout
    try:
        writer = csv.writer(stream)
        writer.writerow(["customer_id"])
        writer.writerows([c] for c in customers)
    finally:
        if out:
            stream.close()
    if out:
        click.echo(f"wrote {len(customers):,} customer ids to {out}", err=True)


@click.command()
@click.option("--steps", required=True, help="comma-separated: touch types, custom activities or stage:NAME")
@click.option("--window", default="14d", show_default=True, help="conversion window from the first step (e.g. 14d, 12h)")
@click.option("--mode", type=click.Choice(["ordered", "strict", "unordered"]), default="ordered", show_default=True)
@click.option("--exclude", multiple=True, help="STEP:FROM-TO (0-based): doing STEP between them removes the customer")
@click.option("--by", default=None, help="break down by a property (channel, doctor, administrator, branch, ...)")
@click.option("--by-touch", default="first", show_default=True, help="first, last or step:N: whose value --by takes")
@click.option("--dropped-at", type=int, default=None, help="list the customers who reached step N (0-based) but not N+1")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="write the --dropped-at list here (CSV)")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def funnel(steps: str, window: str, mode: str, exclude: tuple[str, ...], by: str | None, by_touch: str,
           dropped_at: int | None, out: str | None, as_json: bool) -> None:
    """Conversion through STEPS within a window (docs/funnels.md has the semantics)."""
    from journey.funnels import engine
    from journey.projections.publish import open_snapshot

    request = _request(steps, window, mode, exclude, by, by_touch)
    with open_snapshot(adapters().analytics) as con:
        if dropped_at is not None:
            _write_ids(engine.dropped_at(con, request, dropped_at), out)
            return
        result = engine.run_funnel(con, request)
    if as_json:
        click.echo(result.model_dump_json(indent=2))
        return
    _print_steps(result.steps)
    click.echo(f"({result.mode}, window {window}; excluded {result.excluded:,})")
    for value, part in (result.breakdown or {}).items():
        click.echo(f"\n{by} = {value}")
        _print_steps(part)


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--all", "show_all", is_flag=True, help="every value, not only the significant ones")
def failures(as_json: bool, show_all: bool) -> None:
    """Points of failure per stage: the stage funnel, whose step it was, and why."""
    from journey.projections.publish import open_snapshot
    from journey.projections.reading import failure_tables, rows_as_dicts

    with open_snapshot(adapters().analytics) as con:
        tables = failure_tables(con, show_all)
    if as_json:
        echo_json({name: rows_as_dicts(columns, rows) for name, (columns, rows) in tables.items()}, indent=2)
        return
    for name, (columns, rows) in tables.items():
        click.echo(f"\n{name}")
        print_table(columns, rows)


@click.command()
@click.option("--json", "as_json", is_flag=True)
def metrics(as_json: bool) -> None:
    """Clinic metrics (one definition each, docs/analyst-schema.md): the clinic, acquisition
    per channel (cost per lead, call, booking and new patient, ROAS), administrators, and
    the doctor scorecard."""
    from journey.projections.publish import open_snapshot
    from journey.projections.reading import metric_rows, rows_as_dicts

    with open_snapshot(adapters().analytics) as con:
        columns, rows = metric_rows(con)
    if as_json:
        echo_json(rows_as_dicts(columns, rows), indent=2)
    else:
        print_table(columns, rows)


@click.command()
@click.option("--conversion", default="visit", show_default=True,
              help="the step journeys end in: a touch type or activity, or stage:NAME (e.g. stage:retention)")
@click.option("--json", "as_json", is_flag=True)
def attribution(conversion: str, as_json: bool) -> None:
    """Channel credit for conversions under six models, side by side."""
    from journey.funnels.attribution import attribute
    from journey.funnels.model import parse_step
    from journey.projections.publish import open_snapshot

    with open_snapshot(adapters().analytics) as con:
        result = attribute(con, parse_step(conversion))
    if as_json:
        click.echo(result.model_dump_json(indent=2))
        return
    click.echo(f"{result.conversions:,} conversions ({result.conversion}) with marketing touches; "
               f"{result.conversions_without_touches:,} without")
    print_table(["channel", "first_touch", "last_touch", "linear", "time_decay", "position_40_20_40", "markov"],
                [(c.channel, c.first_touch, c.last_touch, c.linear, c.time_decay, c.position_based, c.markov)
                 for c in result.channels])


COMMANDS = (funnel, failures, metrics, attribution)
