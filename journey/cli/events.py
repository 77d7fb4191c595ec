"""Commands on the event store: ingest, import-log, quarantine, status, identities, schemas."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from journey.cli._common import adapters, echo_json, print_ingest, progress

__all__ = ["COMMANDS"]


@click.command()
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="print the summary as one JSON object")
def ingest(path: str, as_json: bool) -> None:
    """Ingest touches from a JSON Lines file (PATH, or - for stdin)."""
    wired = adapters()
    with progress("ingest") as bar:
        summary = wired.ingestor.ingest(wired.read_jsonl(path), bar)
    print_ingest(summary, as_json)


@click.command("import-log")
@click.argument("path")
@click.option("--case", "case", default="case_id", show_default=True, help="case id column: one customer per case")
@click.option("--activity", default="activity", show_default=True, help="activity name column")
@click.option("--timestamp", default="timestamp", show_default=True, help="timestamp column")
@click.option("--timezone", default=None, help="IANA zone for timestamps without an offset, e.g. Europe/Amsterdam")
@click.option("--log-name", default=None, help="name used in event ids (default: the file name)")
@click.option("--json", "as_json", is_flag=True, help="print the summary as one JSON object")
def import_log(path: str, case: str, activity: str, timestamp: str, timezone: str | None,
               log_name: str | None, as_json: bool) -> None:
    """Import a process-mining event log (CSV, one row per event) as custom touches."""
    from journey.ingest.sources import EventLogColumns, read_event_log

    records = read_event_log(path, EventLogColumns(case, activity, timestamp), log_name=log_name,
                             timezone=timezone)
    with progress("import") as bar:
        summary = adapters().ingestor.ingest(records, bar)
    print_ingest(summary, as_json)


@click.group(invoke_without_command=True)
@click.option("--all", "show_all", is_flag=True, help="include resolved and dismissed entries")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per entry")
@click.option("--limit", default=50, show_default=True)
@click.pass_context
def quarantine(ctx: click.Context, show_all: bool, as_json: bool, limit: int) -> None:
    """List quarantined records (open ones by default) with the reason for each."""
    if ctx.invoked_subcommand is not None:
        return
    store = adapters().store
    entries = store.quarantine(open_only=not show_all, limit=limit)
    total = store.recorder.count_quarantine(open_only=not show_all)
    for entry in entries:
        if as_json:
            echo_json(entry.to_dict())
            continue
        r = entry.rejection
        status = f" [{entry.resolution}]" if entry.resolved_at else ""
        click.echo(f"#{entry.id} {r.source} {r.locator} {r.code}{status}: {r.reason}")
    if not as_json:
        shown = len(entries)
        click.echo(f"{total:,} {'entries' if show_all else 'open entries'}"
                   + (f" (showing {shown}; use --limit)" if shown < total else ""), err=True)


@quarantine.command("export")
@click.argument("out", type=click.Path(dir_okay=False, writable=True))
def quarantine_export(out: str) -> None:
    """Write the open entries' raw records to OUT (JSON Lines) for fixing, then
    `journey ingest OUT`: fixed records resolve their entries."""
    from journey.ingest.quarantine import export_quarantine

    count = export_quarantine(adapters().store, Path(out))
    click.echo(f"wrote {count:,} records to {out}")


@quarantine.command("retry")
def quarantine_retry() -> None:
    """Validate open entries again (after changing a setting) and store those that pass."""
    with progress("retry") as bar:
        summary = adapters().ingestor.retry_quarantine(bar)
    click.echo(f"retried {summary.retried:,}: accepted {summary.accepted:,}, duplicates "
               f"{summary.duplicates:,}, still failing {summary.still_failing:,}, conflicts "
               f"left for review {summary.skipped_conflicts:,}")


@quarantine.command("dismiss")
@click.argument("ids", nargs=-1, type=int, required=True)
@click.option("--note", required=True, help="why nobody will fix these")
def quarantine_dismiss(ids: tuple[int, ...], note: str) -> None:
    """Close entries nobody will fix. They are kept, never deleted."""
    count = adapters().store.recorder.dismiss_quarantine(list(ids), note)
    click.echo(f"dismissed {count} of {len(ids)} entries")


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--wait", "wait", type=click.IntRange(min=0), default=None, metavar="POSITION",
              help="first wait until the published snapshot holds this store position "
                   "(e.g. the `position` of `journey ingest --json`)")
@click.option("--timeout", type=click.FloatRange(min=0), default=60.0, show_default=True, metavar="SECONDS",
              help="with --wait: give up after this many seconds (exit 2, saying how far it got)")
def status(as_json: bool, wait: int | None, timeout: float) -> None:
    """Where the event store is and what it holds, and how far the projection is behind.

    position is the store's head; projection_position what the published snapshot
    holds; projection_lag the events between them; projection_lag_seconds how much
    recorded time the snapshot is missing, by the store's own clock: the head event's
    recorded_at minus that of the first event not yet published (0 when caught up; it
    does not grow while nothing is written; one ingest batch shares one recorded_at).
    unpublished_since is when that first unpublished event was recorded;
    projection_published_at when the snapshot file was last written.

    \b
    Ingest, then read what you ingested:
      journey status --wait "$(journey ingest new.jsonl --json | jq .position)"
    """
    from journey.projections.freshness import wait_for_position
    from journey.services.status import system_status

    wired = adapters()
    if wait is not None:
        wait_for_position(wired.analytics, wait, timeout)
    facts = system_status(wired.store, wired.event_store_location, wired.analytics, wired.kafka_target)
    if as_json:
        echo_json(facts)
        return
    for key, value in facts.items():
        click.echo(f"{key:24} {value}")


@click.command()
@click.option("--ambiguous", is_flag=True, help="list identifiers shared by several customers")
@click.option("--json", "as_json", is_flag=True)
def identities(ambiguous: bool, as_json: bool) -> None:
    """Resolve identifiers into canonical customers over the whole store."""
    from journey.projections.identity import identity_map, identity_summary

    facts = identity_summary(identity_map(adapters().store), ambiguous=ambiguous)
    if as_json:
        echo_json(facts)
        return
    shared = facts.pop("ambiguities")
    for key, value in facts.items():
        click.echo(f"{key:22} {value:,}")
    for a in shared:
        click.echo(f"{a['identifier']} is shared by {', '.join(a['candidates'])}")


@click.command()
@click.option("--check", is_flag=True, help="exit 1 if the files in DIR differ from the models")
@click.option("--out", "out", default="schemas", show_default=True, type=click.Path(file_okay=False))
def schemas(check: bool, out: str) -> None:
    """Write the JSON Schema of the touch contract (for producers in any language)."""
    from journey.schemas import stale_schemas, write_schemas

    if check:
        stale = stale_schemas(Path(out))
        if stale:
            click.echo(f"stale: {', '.join(stale)}; run `journey schemas`", err=True)
            sys.exit(1)
        click.echo("schemas are up to date")
        return
    for path in write_schemas(Path(out)):
        click.echo(f"wrote {path}")


COMMANDS = (ingest, import_log, quarantine, status, identities, schemas)
