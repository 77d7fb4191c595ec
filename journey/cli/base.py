"""Commands that work the patient base: segments (and the contact lists drawn from them
with `journey contacts --segment`), worklists (`journey tasks`) and measured outreach."""

from __future__ import annotations

from datetime import UTC, datetime
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


@click.command()
@click.option("--rule", default=None, help="only this rule's tasks")
@click.option("--owner", default=None, help="only this owner's tasks (an administrator, a doctor, a role)")
@click.option("--as-of", help="the moment the worklist is for (default: the latest touch in the data; "
              "`now` for the wall clock, for a live worklist)")
@click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="a worklist rules file (default: JOURNEY_WORKLISTS or the shipped rules)")
@click.option("--summary", is_flag=True, help="done and overdue rates per rule and owner instead of the tasks")
@click.option("--json", "as_json", is_flag=True)
def tasks(rule: str | None, owner: str | None, as_of: str | None, path: Path | None, summary: bool,
          as_json: bool) -> None:
    """Recall, care, thank-you, reminder and invitation tasks with their owner and status
    (docs/worklists.md)."""
    from journey.base.worklists import load_worklists, task_rates
    from journey.base.worklists import tasks as compute
    from journey.projections.publish import open_snapshot

    wired = adapters()
    model = load_worklists(path or wired.worklists)
    with open_snapshot(wired.analytics) as con:
        when = datetime.now(UTC) if as_of == "now" else moment(as_of, "--as-of")
        now, found = compute(con, model, when, rule=rule, owner=owner)
        rates = task_rates(con)
    if as_json:
        echo_json({"now": now.isoformat(), "rates": rates} if summary else
                  {"now": now.isoformat(), "tasks": [t.to_dict() for t in found]})
        return
    click.echo(f"as of {now.isoformat()}")
    if summary:
        print_table(["rule", "owner", "tasks", "done", "overdue", "due", "not_needed", "held_out", "done_rate"],
                    [(r["rule"], r["owner"], r["tasks"], r["done"], r["overdue"], r["due"], r["not_needed"],
                      r["held_out"], r["done_rate"]) for r in rates])
        return
    print_table(["rule", "customer_id", "owner", "status", "due_at", "deadline"],
                [(t.rule, t.customer_id, t.owner, t.status, t.due_at.isoformat(), t.deadline.isoformat())
                 for t in found])


@click.command()
@click.option("--rule", default=None, help="the worklist rule whose outreach is measured (e.g. recall)")
@click.option("--purpose", default=None, help="or: the rule whose done touch is a message with this purpose")
@click.option("--within", default="30d", show_default=True, help="a booking or visit this soon after the task was due counts")
@click.option("--as-of", help="the moment to measure at (default: the latest touch in the data)")
@click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="a worklist rules file (default: JOURNEY_WORKLISTS or the shipped rules)")
@click.option("--json", "as_json", is_flag=True)
def outreach(rule: str | None, purpose: str | None, within: str, as_of: str | None, path: Path | None,
             as_json: bool) -> None:
    """Did contacted customers come back more than the held-out ones? The uplift with its 95% interval."""
    from journey.base.outreach import outreach as measure
    from journey.base.worklists import load_worklists, rule_for_purpose
    from journey.projections.publish import open_snapshot

    wired = adapters()
    model = load_worklists(path or wired.worklists)
    chosen = rule_for_purpose(model, rule, purpose)
    with open_snapshot(wired.analytics) as con:
        result = measure(con, model, chosen, within, moment(as_of, "--as-of"))
    if as_json:
        echo_json(result.to_dict())
        return
    click.echo(f"{result.rule}: tasks due by {result.now.isoformat()} minus {within}; responded = booked or "
               f"visited within {within} of the due date")
    print_table(["group", "customers", "responded", "rate", "small"],
                [(name, g.customers, g.responded, g.rate, "yes" if g.small else "")
                 for name, g in (("contacted", result.contacted), ("not contacted", result.not_contacted),
                                 ("held out", result.held_out))])
    if result.held_out_contacted:
        click.echo(f"{result.held_out_contacted:,} held-out customers were contacted anyway: the holdout was not kept, "
                   "so the uplift is understated")
    if result.uplift is None or result.interval is None:
        click.echo("uplift: not measurable (no contacted or no held-out customers)")
    else:
        low, high = result.interval
        sure = "could be chance" if low <= 0 <= high else "not chance"
        click.echo(f"uplift: {result.uplift:+.1%} (95% interval {low:+.1%} to {high:+.1%}: {sure})")


@click.command()
@click.option("--top", type=int, default=3, show_default=True, help="how many portraits")
@click.option("--as-of", help="ages at this moment (default: the latest touch in the data)")
@click.option("--json", "as_json", is_flag=True)
def portraits(top: int, as_of: str | None, as_json: bool) -> None:
    """Typical patient portraits: age band, sex and problem, with their share of patients
    and revenue, districts and the channels that bring them."""
    from journey.base.portraits import portraits as compute
    from journey.projections.publish import open_snapshot

    with open_snapshot(adapters().analytics) as con:
        result = compute(con, top, moment(as_of, "--as-of"))
    if as_json:
        echo_json(result.to_dict())
        return
    click.echo(f"{result.patients:,} patients with a profile ({result.without_profile:,} without one)")
    for n, p in enumerate(result.portraits, 1):
        channels = ", ".join(f"{c} {k:,}" for c, k in p.channels)
        click.echo(f"\n{n}. {p.title}: {p.patients:,} patients ({p.patient_share:.0%}), revenue "
                   f"{p.revenue:,.0f} ({p.revenue_share:.0%}), {p.revenue_per_patient:,.0f} per patient")
        click.echo(f"   brought by: {channels or '-'}; districts: {', '.join(p.districts) or '-'}")


COMMANDS = (segments, tasks, outreach, portraits)
