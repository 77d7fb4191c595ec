"""``journey demo``: simulate a clinic, ingest it, project it, write the clinic report."""

from __future__ import annotations

import click

from journey.cli._common import adapters, print_ingest, progress
from journey.cli.maps import write_report

__all__ = ["COMMANDS"]


@click.command()
@click.option("--patients", default=3000, show_default=True, help="how many patients to simulate")
@click.option("--seed", default=7, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the ingest summary as JSON")
def demo(patients: int, seed: int, as_json: bool) -> None:
    """Simulate a clinic (fixed seed), ingest it, and show what was stored."""
    from journey.base.worklists import recall_holdout
    from journey.demo import generate_clinic, write_jsonl
    from journey.projections import operations
    from journey.projections.reading import funnel_lines
    from journey.services.overview import projection_overview, store_overview

    wired = adapters()
    wired.home.mkdir(parents=True, exist_ok=True)
    path = wired.home / f"demo-{seed}-{patients}.jsonl"
    count = write_jsonl(path, generate_clinic(seed=seed, patients=patients,
                                              recall_held_out=recall_holdout(wired.pseudonymiser, wired.worklists)))
    click.echo(f"generated {count:,} touches of {patients:,} patients into {path}")
    with progress("ingest") as bar:
        summary = wired.ingestor.ingest(wired.read_jsonl(str(path)), bar)
    print_ingest(summary, as_json)

    stored = store_overview(wired.store)
    click.echo(f"\nthe event store at {wired.event_store_location} holds {stored.events:,} events:")
    for name, n in stored.events_by_type:
        click.echo(f"  {name:20} {n:>9,}")
    click.echo(f"identity: {stored.identifiers:,} identifiers resolve to {stored.customers:,} customers; "
               f"{stored.ambiguous_identifiers} identifiers are shared by several customers "
               "(`journey identities --ambiguous`)")

    result = operations.catch_up(wired.store, wired.projection_paths, wired.pseudonymiser)
    click.echo(f"\nprojected {result.read:,} events into {wired.analytics} (query it with "
               "`journey sql` or `duckdb -readonly`)")
    projected = projection_overview(wired.analytics)
    click.echo(f"  patients {projected.patients:,}, of whom {projected.visited:,} visited; "
               f"revenue {projected.revenue:,.0f}")
    for line in funnel_lines(projected.stage_funnel):
        click.echo(line)

    report = write_report(wired.analytics, wired.home / "report.html", worklists=wired.worklists)
    click.echo(f"\nthe clinic report: {report.resolve()} (open it in a browser; `journey report` rewrites it)")


COMMANDS = (demo,)
