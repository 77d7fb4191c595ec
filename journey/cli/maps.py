"""Commands on journey maps: the graph (``map``), actual versus ideal (``ideal``) and the
clinic report (``report``). They read the published snapshot, never the event store."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from journey.cli._common import adapters, echo_json, moment
from journey.errors import InputError
from journey.maps.formats import FORMATS

if TYPE_CHECKING:
    from journey.maps.deviations import IdealResult
    from journey.maps.filters import JourneyFilter

__all__ = ["COMMANDS"]

def _filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The journey filters, shared by the map and ideal commands."""
    options = [
        click.option("--since", help="journeys whose first touch is at or after this date (midnight UTC) or "
                     "moment with an offset, e.g. 2025-03-01 or 2025-03-01T00:00:00+03:00"),
        click.option("--until", help="journeys whose first touch is before this date or moment"),
        click.option("--channel", multiple=True, help="some touch came through this channel (repeatable)"),
        click.option("--first-channel", multiple=True, help="the journey began on this channel (repeatable)"),
        click.option("--doctor", multiple=True, help="some touch names this doctor (repeatable)"),
        click.option("--administrator", multiple=True, help="some touch names this administrator (repeatable)"),
        click.option("--segment", multiple=True, metavar="COLUMN=VALUE",
                     help="a customers column, e.g. sex=female or first_channel=seo (repeatable)"),
        click.option("--property", "props", multiple=True, metavar="NAME=VALUE",
                     help="some touch has this property value, e.g. booked_via=online (repeatable)"),
        click.option("--top-variants", type=int, default=None, help="keep only the N most common journeys"),
        click.option("--min-share", type=float, default=0.0, show_default=True,
                     help="hide edges taken by less than this share of the source's customers"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _journey_filter(options: dict[str, Any]) -> JourneyFilter:
    from pydantic import ValidationError

    from journey.maps.filters import JourneyFilter, parse_pairs

    try:
        return JourneyFilter(
            since=moment(options["since"], "--since"), until=moment(options["until"], "--until"),
            channel=options["channel"], first_channel=options["first_channel"], doctor=options["doctor"],
            administrator=options["administrator"], segment=parse_pairs(options["segment"], "segment"),
            properties=parse_pairs(options["props"], "property"), top_variants=options["top_variants"],
            min_edge_share=options["min_share"])
    except ValidationError as error:
        raise InputError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())) from None


@click.command("map")
@click.option("--level", type=click.Choice(["activity", "stage"]), default="activity", show_default=True)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="json", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="write here (default: stdout)")
@_filter_options
def map_command(level: str, fmt: str, out: str | None, **options: Any) -> None:
    """Export the journey graph (activities or stages) as JSON, GraphML, DOT or SVG."""
    from journey.maps.export import render_map, write_map
    from journey.maps.graph import build_map
    from journey.projections.publish import open_snapshot

    journey_filter = _journey_filter(options)
    with open_snapshot(adapters().analytics) as con:
        journey_map = build_map(con, level, journey_filter)  # type: ignore[arg-type]
    if out is None:
        click.echo(render_map(journey_map, fmt))  # type: ignore[arg-type]
        return
    write_map(journey_map, fmt, Path(out))  # type: ignore[arg-type]
    g = journey_map.graph
    click.echo(f"wrote {out}: {level} map of {journey_map.customers:,} customers, "
               f"{g.number_of_nodes():,} nodes, {g.number_of_edges():,} edges", err=True)


def _print_ideal(result: IdealResult) -> None:
    click.echo(f"{result.model.name}: {result.deviating:,} of {result.customers:,} customers deviate somewhere")
    for row in result.rows:
        click.echo(f"  {row.kind:16} {row.label[:58]:58} {row.deviated:>8,} of {row.expected:>8,} "
                   f"({row.share:6.1%})")


@click.command("ideal")
@click.option("--model", type=click.Path(dir_okay=False), default=None,
              help="an ideal journey TOML file (default: the clinic journey shipped with journey)")
@click.option("--deviations", type=click.Path(dir_okay=False), default=None,
              help="write the per-customer deviations to this CSV file")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="save ideal_deviations and ideal_summary into this DuckDB file")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@_filter_options
def ideal_command(model: str | None, deviations: str | None, out: str | None, as_json: bool,
                  **options: Any) -> None:
    """Compare real journeys with the ideal one: missing steps, wrong order, missed deadlines."""
    from journey.maps.deviations import compare, save_deviations, write_deviations_csv
    from journey.maps.ideal import load_ideal
    from journey.projections.publish import OUTPUT, open_snapshot

    journey_filter = _journey_filter(options)
    ideal = load_ideal(model)
    with open_snapshot(adapters().analytics, output=Path(out) if out else None) as con:
        result = compare(con, ideal, journey_filter)
        if deviations:
            write_deviations_csv(con, Path(deviations))
        if out:
            save_deviations(con, OUTPUT)
    if as_json:
        echo_json({"model": ideal.name, "customers": result.customers, "deviating": result.deviating,
                   "rows": [{**vars(r), "share": r.share} for r in result.rows]})
    else:
        _print_ideal(result)


@click.command("report")
@click.option("--out", type=click.Path(dir_okay=False), default="report.html", show_default=True)
@click.option("--model", type=click.Path(dir_okay=False), default=None, help="an ideal journey TOML file")
@click.option("--min-share", type=float, default=0.05, show_default=True,
              help="hide journey-map arrows taken by less than this share of a stage's patients")
def report_command(out: str, model: str | None, min_share: float) -> None:
    """Write the clinic report: one HTML file that opens offline in any browser."""
    if not 0 <= min_share <= 1:
        raise InputError("--min-share is a share between 0 and 1")
    wired = adapters()
    path = write_report(wired.analytics, Path(out), model, min_share, wired.worklists)
    click.echo(f"wrote the clinic report to {path.resolve()}")


def write_report(snapshot: Path, out: Path, model: str | None = None, min_share: float = 0.05,
                 worklists: Path | None = None) -> Path:
    """The clinic report with a progress bar (``journey report`` and ``journey demo``)."""
    from tqdm import tqdm

    from journey.services.report import REPORT_PARTS, write_clinic_report

    with tqdm(total=REPORT_PARTS, desc="report", unit=" parts", file=sys.stderr, disable=None, leave=False) as bar:
        return write_clinic_report(snapshot, out, model, min_share, bar.update, worklists)


COMMANDS = (map_command, ideal_command, report_command)
