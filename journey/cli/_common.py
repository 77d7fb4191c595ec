"""What every command module shares: the error boundary, the adapters of the current
command, progress bars, the one table printer and the one moment option parser."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from journey.domain.moments import parse_moment
from journey.errors import JourneyError

if TYPE_CHECKING:  # loaded by the command that needs it: `journey --help` stays quick
    from journey.bootstrap import Adapters
    from journey.ingest.pipeline import IngestSummary

__all__ = ["JourneyGroup", "adapters", "echo_json", "moment", "print_ingest", "print_table", "progress"]


class JourneyGroup(click.Group):
    """Every error journey raises on purpose ends the command with its message and exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except JourneyError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(2)


def adapters() -> Adapters:
    """The adapters of the running command: what the caller passed as ``obj`` (a test's
    in-memory ones), else wired from the JOURNEY_* settings on first use, once."""
    from journey.bootstrap import Adapters
    from journey.config import Settings

    root = click.get_current_context().find_root()
    if root.obj is None:
        root.obj = Adapters(Settings.from_env())
    return root.obj


@contextmanager
def progress(label: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr (shown on a terminal, silent in pipes and CI logs)."""
    from tqdm import tqdm

    with tqdm(total=total or None, desc=label, unit=" records", unit_scale=True, file=sys.stderr,
              disable=None, leave=False, dynamic_ncols=True) as bar:
        yield bar.update


def moment(text: str | None, option: str) -> datetime | None:
    """An option's moment under the one rule (``journey.domain.moments``)."""
    return None if text is None else parse_moment(text, option)


def echo_json(value: Any, *, indent: int | None = None) -> None:
    click.echo(json.dumps(value, default=str, indent=indent))


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, raw: bool = False) -> None:
    """The one table printer: aligned columns under a rule, the row count on stderr.
    Cells read as figures (``journey.maps.format``: durations, percentages, thousands
    separators, money in its unit), or with ``raw`` as the values are (``journey sql``)."""
    from journey.maps.format import display_rows

    cells = ([["" if v is None else str(v) for v in row] for row in rows] if raw
             else display_rows(list(columns), [tuple(row) for row in rows]))
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    click.echo("  ".join("-" * w for w in widths))
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
    click.echo(f"({len(rows)} rows)", err=True)


def print_ingest(summary: IngestSummary, as_json: bool) -> None:
    """An ingest's summary: one JSON object, or a line and what to do about quarantine."""
    if as_json:
        echo_json(summary.to_dict())
        return
    click.echo(
        f"read {summary.read:,}  accepted {summary.accepted:,}  duplicates {summary.duplicates:,}  "
        f"quarantined {summary.quarantined:,}  ({summary.rate:,.0f} records/s, {summary.seconds:.1f} s)"
    )
    if summary.quarantined:
        click.echo(
            f"{summary.quarantined:,} records were quarantined with their reasons: "
            "see `journey quarantine`; fix them and ingest again, or `journey quarantine retry`",
            err=True,
        )
