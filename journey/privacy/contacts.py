"""Contact lists with consent checks: the only place pseudonyms become contact data.

Analysts work with pseudonyms. A call list or an audience needs phones or emails:
``audience`` takes pseudonymous customers (from a funnel's drop-off list, a recall
query, any SQL), keeps those with the consent the purpose needs, and opens their
contact identifiers from the key store. A forgotten customer has no key: no contact.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

from journey.crypto.keys import KeyStore
from journey.errors import InputError
from journey.projections.consent import CHANNELS
from journey.projections.publish import data_now, open_snapshot
from journey.base.segments import load_segments, members

__all__ = ["PURPOSES", "Audience", "Contact", "audience", "read_customer_list", "recall_candidates",
           "segment_members", "write_contacts"]

PURPOSES = ("marketing", "reminders")


@dataclass(frozen=True)
class Contact:
    customer: str
    """The customer's pseudonym (as in the projections)."""
    clinic_id: str | None
    """The clinic's own patient id, when the customer has one."""
    contact: str


@dataclass
class Audience:
    contacts: list[Contact] = field(default_factory=list)
    without_consent: int = 0
    """Left out: the purpose's consent for the channel is not in force."""
    without_contact: int = 0
    """Left out: no phone/email is known (or the customer was forgotten)."""
    included_without_consent: int = 0
    """Asked for explicitly (``include_without_consent``): in the list anyway."""


def audience(
    snapshot: Path,
    keys: KeyStore,
    customers: Sequence[str],
    *,
    channel: str,
    purpose: str,
    include_without_consent: bool = False,
) -> Audience:
    """Contacts of ``customers`` reachable on ``channel`` for ``purpose``.

    Marketing needs a grant in force; reminders are sent unless refused."""
    if channel not in CHANNELS:
        raise InputError(f"unknown channel {channel!r}; use one of {', '.join(CHANNELS)}")
    if purpose not in PURPOSES:
        raise InputError(f"unknown purpose {purpose!r}; use one of {', '.join(PURPOSES)}")
    wanted = sorted(set(customers))
    kind = "email" if channel == "email" else "phone"
    with open_snapshot(snapshot) as con:
        consent = dict(con.execute(
            "SELECT w.customer_id, cs.granted FROM (SELECT unnest($1::VARCHAR[]) AS customer_id) w "
            "LEFT JOIN consent_state cs ON cs.customer_id = w.customer_id AND cs.channel = $2 AND cs.purpose = $3",
            [wanted, channel, purpose]).fetchall())
        identifiers = con.execute(
            "SELECT customer_id, id_kind, coalesce(min(id) FILTER (WHERE NOT shared), min(id)) FROM customer_identifiers "
            "WHERE customer_id IN (SELECT unnest($1::VARCHAR[])) AND id_kind IN ($2, 'customer_id') GROUP BY ALL",
            [wanted, kind]).fetchall()
    by_customer: dict[str, dict[str, str]] = {}
    for customer, id_kind, pseudonym in identifiers:
        by_customer.setdefault(customer, {})[id_kind] = pseudonym
    opened = keys.contact(p for ids in by_customer.values() for p in ids.values())
    result = Audience()
    for customer in wanted:
        granted = consent.get(customer)
        allowed = bool(granted) if purpose == "marketing" else granted is not False
        if not allowed and not include_without_consent:
            result.without_consent += 1
            continue
        ids = by_customer.get(customer, {})
        contact = opened.get(ids.get(kind, ""))
        if contact is None:
            result.without_contact += 1
            continue
        clinic = opened.get(ids.get("customer_id", ""))
        result.contacts.append(Contact(customer, clinic[1] if clinic else None, contact[1]))
        result.included_without_consent += not allowed
    return result


def recall_candidates(snapshot: Path, days: int, as_of: datetime | None = None) -> list[str]:
    """Customers who visited, but not in the ``days`` before ``as_of`` (default: the
    latest touch in the projection, never the wall clock): due a recall."""
    if days < 1:
        raise InputError("--recall-days must be at least 1")
    with open_snapshot(snapshot) as con:
        return [c for (c,) in con.execute(
            "SELECT customer_id FROM touchpoints WHERE type = 'visit' AND customer_id IS NOT NULL "
            "GROUP BY customer_id HAVING max(occurred_at) < $1::TIMESTAMPTZ - to_days($2) ORDER BY 1",
            [data_now(con, as_of), days]).fetchall()]


def segment_members(snapshot: Path, segments: Path | None, name: str, as_of: datetime | None = None) -> list[str]:
    """The members of segment ``name`` (from the file ``segments``, or the shipped ones) as of ``as_of``."""
    with open_snapshot(snapshot) as con:
        return members(con, load_segments(segments), name, as_of)


def read_customer_list(file: IO[str]) -> list[str]:
    """Pseudonyms from a file: one a line, or a CSV whose first column is customer_id
    (what ``journey funnel --dropped-at N`` writes)."""
    wanted = []
    for row in csv.reader(file):
        if row and row[0].strip() and row[0].strip() != "customer_id":
            wanted.append(row[0].strip())
    return wanted


def write_contacts(contacts: Sequence[Contact], out: Path | IO[str]) -> None:
    """The contact list as CSV; a file is created with mode 0600 (it holds contact data)."""
    if not isinstance(out, Path):
        _write(out, contacts)
        return
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", newline="") as file:
        _write(file, contacts)


def _write(file: IO[str], contacts: Sequence[Contact]) -> None:
    writer = csv.writer(file)
    writer.writerow(["customer_id", "clinic_id", "contact"])
    writer.writerows((c.customer, c.clinic_id or "", c.contact) for c in contacts)
