"""Commands that work the patient base: segments (and the contact lists drawn from them
with `journey contacts --segment`)."""

from __future__ import annotations

from pathlib import Path

import click

from journey.cli._common import adapters, echo_json, moment, print_table

__all__ = ["COMMANDS"]


@click.command()
@click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="a segments file (default: JOURNEY_SEGMENTS or the shipped segments)")
@click.option("--as-of", help="membership at this date or moment (default: the latest touch in the data)")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="save the tables segments and segment_members into this DuckDB file")
@click.option("--json", "as_json", is_flag=True)
def segments(path: Path | None, as_of: str | None, out: Path | None, as_json: bool) -> None:
    """The clinic's segments with their sizes (docs/segments.md)."""
    from journey.projections.publish import OUTPUT, open_snapshot
    from journey.base.segments import load_segments, segment_sizes, write_segment_tables

    wired = adapters()
    model = load_segments(path or wired.segments)
    with open_snapshot(wired.analytics, output=out) as con:
        when, sizes = segment_sizes(con, model, moment(as_of, "--as-of"))
        if out is not None:
            write_segment_tables(con, model, OUTPUT, when)
    if as_json:
        echo_json({"as_of": when.isoformat(), "segments": [vars(s) for s in sizes]})
        return
    click.echo(f"as of {when.isoformat()}")
    print_table(["segment", "customers", "description"], [(s.name, s.size, s.description) for s in sizes])
    if out is not None:
        click.echo(f"saved segments and segment_members into {out}", err=True)


COMMANDS = (segments,)
