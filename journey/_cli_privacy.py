"""The privacy commands of the CLI: ``journey forget`` and ``journey contacts``."""

from __future__ import annotations

import csv
import json
import os
import sys
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

import click

from journey.bootstrap import open_event_store, open_key_store
from journey.cli import _moment, _progress, _settings, main
from journey.errors import InputError
from journey.projections.consent import CHANNELS

__all__: list[str] = []


@main.command()
@click.argument("customer")
@click.option("--note", default="", help="why, kept with the erasure (write no personal data here)")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@click.option("--json", "as_json", is_flag=True)
def forget(customer: str, note: str, yes: bool, as_json: bool) -> None:
    """Forget a customer: destroy their data keys (crypto-shredding).

    CUSTOMER is a clinic customer_id, phone:+7..., email:..., anonymous_id:..., or the
    pseudonym analysts see. Every identifier resolved to the same customer is
    forgotten; identifiers shared with another customer are kept (and counted).
    The projections drop the customer at the next `journey project`.
    """
    from journey.privacy.forget import forget as forget_customer
    from journey.privacy.forget import parse_reference

    settings = _settings()
    store = open_event_store(settings)
    target = parse_reference(customer, store, settings.default_region)
    if not yes:
        click.confirm(f"Forget the customer of this {target[0]}? Their personal data becomes unreadable "
                      "for good", abort=True, err=True)
    with _progress("reading identities") as progress:
        erasure = forget_customer(store, target, note=note, progress=progress)
    if as_json:
        click.echo(json.dumps(asdict(erasure)))
        return
    kinds = ", ".join(f"{n} {k}" for k, n in erasure.identifiers.items())
    click.echo(f"forgotten: {kinds} ({erasure.keys_destroyed} keys destroyed; erasure {erasure.erasure_id} "
               f"recorded at position {erasure.position})")
    if erasure.shared_kept:
        shared = ", ".join(f"{n} {k}" for k, n in erasure.shared_kept.items())
        click.echo(f"kept: {shared} shared with other customers (their data too)")
    if erasure.quarantine_erased:
        click.echo(f"blanked {erasure.quarantine_erased} quarantined records that named the customer")
    click.echo("run `journey project` to drop the customer from the projections", err=True)


@main.command()
@click.argument("customers", required=False, type=click.File("r"))
@click.option("--channel", type=click.Choice(CHANNELS), required=True, help="how they will be contacted")
@click.option("--purpose", type=click.Choice(["marketing", "reminders"]), default="marketing", show_default=True,
              help="marketing needs a grant in force; reminders are sent unless refused")
@click.option("--recall-days", type=int, help="the audience: customers with no visit in this many days")
@click.option("--as-of", help="with --recall-days: the day to count back from (default: now)")
@click.option("--include-without-consent", is_flag=True, help="list customers without the consent too")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="CSV file (mode 0600); default stdout")
def contacts(customers: IO[str] | None, channel: str, purpose: str, recall_days: int | None, as_of: str | None,
             include_without_consent: bool, out: Path | None) -> None:
    """Export contact data for a list of customers, with consent checks.

    CUSTOMERS is a file (or - for stdin) of customer pseudonyms, one a line or a CSV
    whose first column is customer_id (e.g. `journey funnel ... --dropped-at N`).
    """
    from journey.privacy.contacts import audience, recall_candidates

    settings = _settings()
    if (customers is None) == (recall_days is None):
        raise InputError("give either a CUSTOMERS file (- for stdin) or --recall-days, not both or neither")
    if recall_days is not None:
        moment = _moment(as_of) if as_of else datetime.now(timezone.utc)
        wanted = recall_candidates(settings.analytics_path, recall_days, moment)
    else:
        wanted = _read_customers(customers)  # type: ignore[arg-type]
    result = audience(settings.analytics_path, open_key_store(settings), wanted, channel=channel, purpose=purpose,
                      include_without_consent=include_without_consent)
    _write_contacts(result.contacts, out)
    click.echo(f"exported {len(result.contacts):,} of {len(wanted):,} customers", err=True)
    if result.without_consent:
        click.echo(f"left out {result.without_consent:,} without {purpose} consent for {channel} "
                   "(--include-without-consent lists them anyway)", err=True)
    if result.included_without_consent:
        click.echo(f"included {result.included_without_consent:,} WITHOUT {purpose} consent for {channel}, "
                   "as asked", err=True)
    if result.without_contact:
        click.echo(f"left out {result.without_contact:,} with no known "
                   f"{'email' if channel == 'email' else 'phone'} (or forgotten)", err=True)


def _read_customers(file: IO[str]) -> list[str]:
    wanted = []
    for row in csv.reader(file):
        if row and row[0].strip() and row[0].strip() != "customer_id":
            wanted.append(row[0].strip())
    return wanted


def _write_contacts(rows: list, out: Path | None) -> None:
    if out is None:
        _write(sys.stdout, rows)
        return
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", newline="") as file:
        _write(file, rows)


def _write(file: IO[str], rows: list) -> None:
    writer = csv.writer(file)
    writer.writerow(["customer_id", "clinic_id", "contact"])
    writer.writerows((c.customer, c.clinic_id or "", c.contact) for c in rows)
