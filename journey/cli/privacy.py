"""Privacy commands: forget a customer (crypto-shredding), consent-checked contact lists."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import IO

import click

from journey.cli._common import adapters, echo_json, moment, progress
from journey.errors import InputError
from journey.domain.channels import CONSENT_CHANNELS as CHANNELS

__all__ = ["COMMANDS"]


@click.command()
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

    wired = adapters()
    target = parse_reference(customer, wired.store, wired.default_region)
    if not yes:
        click.confirm(f"Forget the customer of this {target[0]}? Their personal data becomes unreadable "
                      "for good", abort=True, err=True)
    with progress("reading identities") as bar:
        erasure = forget_customer(wired.store, target, note=note, progress=bar)
    if as_json:
        echo_json(asdict(erasure))
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


@click.command()
@click.argument("customers", required=False, type=click.File("r"))
@click.option("--channel", type=click.Choice(CHANNELS), required=True, help="how they will be contacted")
@click.option("--purpose", type=click.Choice(["marketing", "reminders"]), default="marketing", show_default=True,
              help="marketing needs a grant in force; reminders are sent unless refused")
@click.option("--recall-days", type=int, help="the audience: customers with no visit in this many days")
@click.option("--segment", help="the audience: the members of this segment (`journey segments` lists them)")
@click.option("--as-of", help="with --recall-days or --segment: the moment to count from (default: the latest "
              "touch in the projection)")
@click.option("--include-without-consent", is_flag=True, help="list customers without the consent too")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="CSV file (mode 0600); default stdout")
def contacts(customers: IO[str] | None, channel: str, purpose: str, recall_days: int | None, segment: str | None,
             as_of: str | None, include_without_consent: bool, out: Path | None) -> None:
    """Export contact data for a list of customers, with consent checks.

    CUSTOMERS is a file (or - for stdin) of customer pseudonyms, one a line or a CSV
    whose first column is customer_id (e.g. `journey funnel ... --dropped-at N`).
    """
    from journey.privacy.contacts import (audience, read_customer_list, recall_candidates, segment_members,
                                          write_contacts)

    wired = adapters()
    if sum(x is not None for x in (customers, recall_days, segment)) != 1:
        raise InputError("give one audience: a CUSTOMERS file (- for stdin), --recall-days or --segment")
    if recall_days is not None:
        wanted = recall_candidates(wired.analytics, recall_days, moment(as_of, "--as-of"))
    elif segment is not None:
        wanted = segment_members(wired.analytics, wired.segments, segment, moment(as_of, "--as-of"))
    else:
        wanted = read_customer_list(customers)  # type: ignore[arg-type]
    result = audience(wired.analytics, wired.key_store, wanted, channel=channel, purpose=purpose,
                      include_without_consent=include_without_consent)
    write_contacts(result.contacts, out if out is not None else sys.stdout)
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


@click.command()
@click.argument("target")
@click.option("--json", "as_json", is_flag=True)
def reseal(target: str, as_json: bool) -> None:
    """Copy every event into a NEW store at TARGET (sqlite:///PATH or postgresql://...),
    sealed: brings events stored before sealing under crypto-shredding (docs/privacy.md)."""
    from journey.privacy.reseal import reseal as copy_sealed

    wired = adapters()
    with progress("reseal", wired.store.position()) as bar:
        summary = copy_sealed(wired.store, wired.reseal_target(target), progress=bar)
    if as_json:
        echo_json(vars(summary))
        return
    click.echo(f"read {summary.read:,}  written {summary.written:,}  already there {summary.already_there:,}  "
               f"erased before {summary.erased:,}; set JOURNEY_EVENT_STORE to the new store, run `journey rebuild`, "
               "then delete the old store and its backups")


COMMANDS = (forget, contacts, reseal)
