"""``journey map``, ``journey ideal`` and ``journey report``: the maps on the command line.

They read the published snapshot (read-only, so they run beside a following projector)
and never the event store.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import duckdb
from pydantic import ValidationError
from tqdm import tqdm

from journey.config import Settings
from journey.errors import InputError, ProjectionError
from journey.maps.deviations import IdealResult, compare
from journey.maps.export import FORMATS, to_dot, to_graphml, to_json, to_svg, write_map
from journey.maps.filters import JourneyFilter, parse_pairs
from journey.maps.graph import build_map
from journey.maps.ideal import load_ideal
from journey.maps.report import write_report

__all__ = ["COMMANDS", "report_into"]


@contextmanager
def snapshot(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The published projection, read-only."""
    if not path.exists():
        raise ProjectionError(f"there is no projection at {path} yet; run `journey project`")
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET enable_progress_bar = false")
        yield con
    finally:
        con.close()


def _moment(text: str | None) -> datetime | None:
    """An ISO 8601 date or moment; without an offset it is UTC (say +03:00 for Moscow)."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{text!r} is not a date or an ISO 8601 moment (2025-03-01 or 2025-03-01T09:00+03:00)") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The journey filters, shared by the map and ideal commands."""
    options = [
        click.option("--since", help="journeys whose first touch is at or after this date/moment (UTC unless "
                     "an offset is given, e.g. 2025-03-01T00:00+03:00)"),
        click.option("--until", help="journeys whose first touch is before this date/moment"),
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
    try:
        return JourneyFilter(
            since=_moment(options["since"]), until=_moment(options["until"]), channel=options["channel"],
            first_channel=options["first_channel"], doctor=options["doctor"],
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
    journey_filter = _journey_filter(options)
    with snapshot(Settings.from_env().analytics_path) as con:
        journey_map = build_map(con, level, journey_filter)  # type: ignore[arg-type]
    if out is None:
        text = {"json": lambda m: json.dumps(to_json(m), indent=2, ensure_ascii=False), "graphml": to_graphml,
                "dot": to_dot, "svg": to_svg}[fmt](journey_map)
        click.echo(text)
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
    journey_filter = _journey_filter(options)
    ideal = load_ideal(model)
    with snapshot(Settings.from_env().analytics_path) as con:
        result = compare(con, ideal, journey_filter)
        if deviations:
            _write_csv(con, Path(deviations))
        if out:
            _save(con, Path(out))
    if as_json:
        click.echo(json.dumps({"model": ideal.name, "customers": result.customers, "deviating": result.deviating,
                               "rows": [{**vars(r), "share": r.share} for r in result.rows]}))
    else:
        _print_ideal(result)


def _write_csv(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    cursor = con.execute("SELECT * FROM ideal_deviations ORDER BY customer_id, kind, item")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([d[0] for d in cursor.description])
        writer.writerows(cursor.fetchall())


def _save(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    con.execute("ATTACH ? AS ideal_out (READ_WRITE)", [str(path)])  # the snapshot itself stays read-only
    try:
        for table in ("ideal_deviations", "ideal_summary"):
            con.execute(f"CREATE OR REPLACE TABLE ideal_out.{table} AS SELECT * FROM temp.{table}")
    finally:
        con.execute("DETACH ideal_out")


def report_into(analytics: Path, out: Path, model: str | None = None, min_share: float = 0.05) -> Path:
    """Write the clinic report from the snapshot at ``analytics`` (progress on stderr)."""
    ideal = load_ideal(model)
    with snapshot(analytics) as con, tqdm(total=5, desc="report", unit=" parts", file=sys.stderr,
                                          disable=None, leave=False) as bar:
        return write_report(con, out, ideal, min_share, bar.update)


@click.command("report")
@click.option("--out", type=click.Path(dir_okay=False), default="report.html", show_default=True)
@click.option("--model", type=click.Path(dir_okay=False), default=None, help="an ideal journey TOML file")
@click.option("--min-share", type=float, default=0.05, show_default=True,
              help="hide journey-map arrows taken by less than this share of a stage's patients")
def report_command(out: str, model: str | None, min_share: float) -> None:
    """Write the clinic report: one HTML file that opens offline in any browser."""
    if not 0 <= min_share <= 1:
        raise InputError("--min-share is a share between 0 and 1")
    path = report_into(Settings.from_env().analytics_path, Path(out), model, min_share)
    click.echo(f"wrote the clinic report to {path.resolve()}")


COMMANDS = (map_command, ideal_command, report_command)
