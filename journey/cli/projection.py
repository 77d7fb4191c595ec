"""Commands on the DuckDB projection: project, rebuild, rederive, the stage model, SQL."""

from __future__ import annotations

import csv
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from journey.cli._common import adapters, echo_json, print_table, progress
from journey.domain.moments import parse_moment
from journey.errors import InputError

if TYPE_CHECKING:
    from journey.projections.projector import CatchUp
    from journey.projections.stage_model import StageModel

__all__ = ["COMMANDS"]


def _print_result(result: CatchUp, path: Path, as_json: bool, what: str) -> None:
    if as_json:
        echo_json({**result.to_dict(), "file": str(path)})
        return
    click.echo(f"read {result.read:,} events ({result.rate:,.0f}/s), position {result.position:,}; "
               f"{what}: {path}")


@click.command()
@click.option("--follow", is_flag=True, help="keep following the event store until Ctrl-C or SIGTERM")
@click.option("--interval", default=1.0, show_default=True, help="seconds between polls with --follow")
@click.option("--as-of", "as_of", default=None,
              help="build what was known at this moment, e.g. 2025-03-01T00:00:00+03:00 (needs --out)")
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="the DuckDB file for --as-of")
@click.option("--json", "as_json", is_flag=True)
def project(follow: bool, interval: float, as_of: str | None, out: str | None, as_json: bool) -> None:
    """Catch the DuckDB projection up with the event store and publish it for analysts."""
    from journey.projections import operations

    wired = adapters()
    store, paths = wired.store, wired.projection_paths
    if as_of is not None or out is not None:
        if as_of is None or out is None or follow:
            raise InputError("--as-of and --out go together, without --follow")
        when = parse_moment(as_of, "--as-of")
        with progress("project", store.position()) as bar:
            result = operations.build_as_of(store, Path(out), when, wired.pseudonymiser, bar, paths.stage_model)
        _print_result(result, Path(out), as_json, f"as of {when.isoformat()}")
        return
    if follow:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
        click.echo(f"following {wired.event_store_location} into {paths.snapshot}", err=True)
        operations.follow(store, paths, wired.pseudonymiser, interval=interval)
        click.echo("stopped cleanly", err=True)
        return
    with progress("project", store.position()) as bar:
        result = operations.catch_up(store, paths, wired.pseudonymiser, bar)
    _print_result(result, paths.snapshot, as_json, "published")


@click.command()
@click.option("--json", "as_json", is_flag=True)
def rebuild(as_json: bool) -> None:
    """Rebuild the projection from scratch into a new file, then swap it in."""
    from journey.projections import operations

    wired = adapters()
    with progress("rebuild", wired.store.position()) as bar:
        result = operations.rebuild(wired.store, wired.projection_paths, wired.pseudonymiser, bar)
    _print_result(result, wired.analytics, as_json, "rebuilt and published")


@click.command()
@click.option("--stages", "stage_file", type=click.Path(dir_okay=False), default=None,
              help="a stage model file to derive with (default: JOURNEY_STAGE_MODEL or the default model)")
@click.option("--json", "as_json", is_flag=True)
def rederive(stage_file: str | None, as_json: bool) -> None:
    """Re-derive the analyst tables (stages, points of failure...) from the projection's
    stored base, without reading or loading any event again, and publish them.

    --stages applies a model for this derive only; set JOURNEY_STAGE_MODEL to keep it
    (the next `journey project` derives with the configured model)."""
    from journey.projections.operations import rederive as run
    from journey.projections.stage_model import load_stage_model

    wired = adapters()
    paths = wired.projection_paths
    model_path = Path(stage_file) if stage_file is not None else paths.stage_model
    position = run(wired.store, paths, wired.pseudonymiser, model_path)
    model = load_stage_model(model_path)
    facts = {"position": position, "stages": list(model.names), "file": str(paths.snapshot)}
    if as_json:
        echo_json(facts)
    else:
        click.echo(f"re-derived position {position:,} with stages {' > '.join(model.names)}; published {paths.snapshot}")


@click.group()
def stages() -> None:
    """The stage model: which touches put a customer in which journey stage."""


def _print_stages(model: StageModel) -> None:
    for stage in model.stages:
        click.echo(f"{stage.name:14} sla {stage.sla or '-':>6}  {len(stage.rules)} rule(s)")


@stages.command("validate")
@click.argument("path", type=click.Path(dir_okay=False))
def stages_validate(path: str) -> None:
    """Check a stage model file (TOML) and print its stages."""
    from journey.projections.stage_model import load_stage_model

    model = load_stage_model(Path(path))
    _print_stages(model)
    click.echo(f"{path}: valid ({len(model.stages)} stages)")


@stages.command("show")
def stages_show() -> None:
    """Print the stage model in use (JOURNEY_STAGE_MODEL, or the default)."""
    from journey.projections.stage_model import load_stage_model

    path = adapters().stage_model
    click.echo(f"# {path or 'the default stage model'}")
    _print_stages(load_stage_model(path))


@click.command()
@click.argument("query_text", metavar="QUERY")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def sql(query_text: str, fmt: str) -> None:
    """Run a read-only SQL query on the published projection (JOURNEY_ANALYTICS)."""
    from journey.projections.publish import query

    columns, rows = query(adapters().analytics, query_text)
    if fmt == "json":
        for row in rows:
            echo_json(dict(zip(columns, row, strict=True)))
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    else:
        print_table(columns, rows, raw=True)


COMMANDS = (project, rebuild, rederive, stages, sql)
