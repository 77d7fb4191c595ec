"""The ``journey`` commands of the funnels issue: stage models, re-deriving, funnels,
points of failure, clinic metrics and attribution. They read the published snapshot
(``JOURNEY_ANALYTICS``) read-only; ``rederive`` is the one that writes."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import duckdb

from journey.config import Settings
from journey.errors import InputError, ProjectionError
from journey.funnels.model import Breakdown, FunnelRequest, parse_exclusion, parse_step
from journey.projections.stage_model import load_stage_model, parse_duration

__all__ = ["COMMANDS"]


@contextmanager
def _snapshot() -> Iterator[duckdb.DuckDBPyConnection]:
    path = Settings.from_env().analytics_path
    if not path.exists():
        raise ProjectionError(f"there is no projection at {path} yet; run `journey project`")
    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET enable_progress_bar = false")
    try:
        yield con
    finally:
        con.close()


def _show(rows: list[tuple[Any, ...]], columns: list[str]) -> None:
    from journey.maps.format import display_rows

    cells = display_rows(columns, rows)
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


@click.group()
def stages() -> None:
    """The stage model: which touches put a customer in which journey stage."""


@stages.command("validate")
@click.argument("path", type=click.Path(dir_okay=False))
def stages_validate(path: str) -> None:
    """Check a stage model file (TOML) and print its stages."""
    model = load_stage_model(Path(path))
    for stage in model.stages:
        click.echo(f"{stage.name:14} sla {stage.sla or '-':>6}  {len(stage.rules)} rule(s)")
    click.echo(f"{path}: valid ({len(model.stages)} stages)")


@stages.command("show")
def stages_show() -> None:
    """Print the stage model in use (JOURNEY_STAGE_MODEL, or the default)."""
    path = Settings.from_env().stage_model_path
    model = load_stage_model(path)
    click.echo(f"# {path or 'the default stage model'}")
    for stage in model.stages:
        click.echo(f"{stage.name:14} sla {stage.sla or '-':>6}  {len(stage.rules)} rule(s)")


@click.command()
@click.option("--stages", "stage_file", type=click.Path(dir_okay=False), default=None,
              help="a stage model file to derive with (default: JOURNEY_STAGE_MODEL or the default model)")
@click.option("--json", "as_json", is_flag=True)
def rederive(stage_file: str | None, as_json: bool) -> None:
    """Re-derive the analyst tables (stages, points of failure...) from the projection's
    stored base, without reading or loading any event again, and publish them.

    --stages applies a model for this derive only; set JOURNEY_STAGE_MODEL to keep it
    (the next `journey project` derives with the configured model)."""
    from dataclasses import replace

    from journey.bootstrap import open_event_store, open_pseudonymiser, projection_paths
    from journey.projections.operations import rederive as run

    settings = Settings.from_env()
    paths = projection_paths(settings)
    if stage_file is not None:
        load_stage_model(Path(stage_file))  # a clear error before taking the lock
        paths = replace(paths, stage_model=Path(stage_file))
    position = run(open_event_store(settings), paths, open_pseudonymiser(settings))
    model = load_stage_model(paths.stage_model)
    facts = {"position": position, "stages": list(model.names), "file": str(paths.snapshot)}
    if as_json:
        click.echo(json.dumps(facts))
    else:
        click.echo(f"re-derived position {position:,} with stages {' > '.join(model.names)}; published {paths.snapshot}")


def _breakdown(by: str | None, touch: str) -> Breakdown | None:
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

    try:
        return FunnelRequest(steps=[parse_step(s) for s in steps.split(",")], window_seconds=parse_duration(window),
                             mode=mode, exclusions=[parse_exclusion(x) for x in exclude],
                             breakdown=_breakdown(by, by_touch))
    except ValidationError as error:
        raise InputError(f"{error.errors()[0]['msg']}") from None


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

    request = _request(steps, window, mode, exclude, by, by_touch)
    with _snapshot() as con:
        if dropped_at is not None:
            customers = engine.dropped_at(con, request, dropped_at)
            _write_ids(customers, out)
            return
        result = engine.run_funnel(con, request)
    if as_json:
        click.echo(result.model_dump_json(indent=2))
        return
    _show_steps(result.steps)
    click.echo(f"({result.mode}, window {window}; excluded {result.excluded:,})")
    for value, part in (result.breakdown or {}).items():
        click.echo(f"\n{by} = {value}")
        _show_steps(part)


def _show_steps(steps: Any) -> None:
    _show([(s.index, s.name, s.count, s.dropped, s.conversion_from_previous, s.conversion_from_first,
            s.median_seconds_to_convert) for s in steps],
          ["step", "name", "customers", "dropped", "from_previous", "from_first", "median_seconds"])


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
@click.option("--json", "as_json", is_flag=True)
@click.option("--all", "show_all", is_flag=True, help="every value, not only the significant ones")
def failures(as_json: bool, show_all: bool) -> None:
    """Points of failure per stage: the stage funnel, whose step it was, and why."""
    from journey.projections.reading import failure_tables, rows_as_dicts

    with _snapshot() as con:
        tables = failure_tables(con, show_all)
    if as_json:
        click.echo(json.dumps({name: rows_as_dicts(cols, rows) for name, (cols, rows) in tables.items()},
                              default=str, indent=2))
        return
    for name, (columns, rows) in tables.items():
        click.echo(f"\n{name}")
        _show(rows, columns)


@click.command()
@click.option("--json", "as_json", is_flag=True)
def metrics(as_json: bool) -> None:
    """Clinic metrics (one definition each, docs/analyst-schema.md): the clinic, acquisition
    per channel (cost per lead, call, booking and new patient, ROAS), administrators, and
    the doctor scorecard."""
    from journey.projections.reading import metric_rows, rows_as_dicts

    with _snapshot() as con:
        columns, rows = metric_rows(con)
    if as_json:
        click.echo(json.dumps(rows_as_dicts(columns, rows), indent=2))
    else:
        _show(rows, columns)


@click.command()
@click.option("--conversion", default="visit", show_default=True,
              help="the step journeys end in: a touch type or activity, or stage:NAME (e.g. stage:retention)")
@click.option("--json", "as_json", is_flag=True)
def attribution(conversion: str, as_json: bool) -> None:
    """Channel credit for conversions under six models, side by side."""
    from journey.funnels.attribution import attribute

    with _snapshot() as con:
        result = attribute(con, parse_step(conversion))
    if as_json:
        click.echo(result.model_dump_json(indent=2))
        return
    click.echo(f"{result.conversions:,} conversions ({result.conversion}) with marketing touches; "
               f"{result.conversions_without_touches:,} without")
    _show([(c.channel, c.first_touch, c.last_touch, c.linear, c.time_decay, c.position_based, c.markov)
           for c in result.channels],
          ["channel", "first_touch", "last_touch", "linear", "time_decay", "position_40_20_40", "markov"])


COMMANDS = (stages, rederive, funnel, failures, metrics, attribution)
