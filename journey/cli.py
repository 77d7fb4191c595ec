"""The ``journey`` command line. Every command reads its settings from ``JOURNEY_*``."""

from __future__ import annotations

import csv
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from journey.bootstrap import open_event_store, open_ingestor
from journey.config import Settings
from journey.errors import InputError, JourneyError
from journey.ingest.pipeline import IngestSummary
from journey.ingest.sources import EventLogColumns, read_event_log, read_jsonl

__all__ = ["main"]


def _settings() -> Settings:
    return Settings.from_env()


@contextmanager
def _progress(label: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr (shown on a terminal, silent in pipes and CI logs)."""
    with tqdm(total=total or None, desc=label, unit=" records", unit_scale=True, file=sys.stderr,
              disable=None, leave=False, dynamic_ncols=True) as bar:
        yield bar.update


def _report(summary: IngestSummary, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary.to_dict()))
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


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except JourneyError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(2)


@click.group(cls=_Group)
@click.version_option(package_name="journey")
def main() -> None:
    """journey: an event-sourced customer-journey engine for clinics.

    Settings come from the environment: JOURNEY_HOME (default ./.journey),
    JOURNEY_EVENT_STORE (sqlite:///PATH or postgresql://...), JOURNEY_DEFAULT_REGION.
    """


@main.command()
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="print the summary as one JSON object")
def ingest(path: str, as_json: bool) -> None:
    """Ingest touches from a JSON Lines file (PATH, or - for stdin)."""
    settings = _settings()
    ingestor = open_ingestor(settings)
    with _progress("ingest") as bar:
        summary = ingestor.ingest(read_jsonl(path, max_bytes=settings.max_record_bytes), bar)
    _report(summary, as_json)


@main.command()
@click.argument("path")
@click.option("--bootstrap", default=None, help="Kafka bootstrap servers (JOURNEY_KAFKA_BOOTSTRAP)")
@click.option("--topic", default=None, help="the touches topic (JOURNEY_KAFKA_TOPIC)")
def produce(path: str, bootstrap: str | None, topic: str | None) -> None:
    """Send a JSON Lines file of touches to Kafka, validating each one first.

    Invalid lines are reported with their reason and not sent."""
    from journey.errors import InvalidTouchError
    from journey.producer import TouchProducer

    settings = _settings()
    sent = refused = 0
    with TouchProducer(bootstrap or settings.kafka_bootstrap, topic or settings.kafka_topic,
                       default_region=settings.default_region) as producer, _progress("produce") as bar:
        for record in read_jsonl(path, max_bytes=settings.max_record_bytes):
            try:
                producer.send(record.raw)
                sent += 1
            except InvalidTouchError as error:
                refused += 1
                click.echo(f"{record.locator}: not sent: {error.reason}", err=True)
            bar(1)
    click.echo(f"sent {sent:,} touches to {topic or settings.kafka_topic}; refused {refused:,}")


@main.command("ingest-kafka")
@click.option("--bootstrap", default=None, help="Kafka bootstrap servers (JOURNEY_KAFKA_BOOTSTRAP)")
@click.option("--topic", default=None, help="the touches topic (JOURNEY_KAFKA_TOPIC)")
@click.option("--group", default=None, help="the consumer group (JOURNEY_KAFKA_GROUP)")
@click.option("--until-idle", type=float, default=None, help="exit once nothing arrived for this many seconds")
@click.option("--json", "as_json", is_flag=True, help="print the summary as one JSON object")
def ingest_kafka(bootstrap: str | None, topic: str | None, group: str | None, until_idle: float | None,
                 as_json: bool) -> None:
    """Consume touches from Kafka into the event store, exactly once (stops on SIGTERM)."""
    import signal
    import threading

    from journey.bootstrap import open_kafka_worker
    from journey.ingest.kafka import KafkaSettings

    settings = _settings()
    topic = topic or settings.kafka_topic
    kafka = KafkaSettings(bootstrap or settings.kafka_bootstrap, topic,
                          settings.kafka_dead_letter_topic if topic == settings.kafka_topic else f"{topic}.dead-letter",
                          group or settings.kafka_group, max_batch=settings.batch_size)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("kafka").setLevel(logging.WARNING)
    worker = open_kafka_worker(settings, kafka)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    logging.getLogger("journey.kafka").info("consuming %s as group %s into %s", topic, kafka.group, _where(settings))
    with _progress("ingest-kafka") as bar:
        summary = worker.run(stop=stop, until_idle=until_idle, progress=bar)
    _report(summary, as_json)


@main.command("import-log")
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
    ingestor = open_ingestor(_settings())
    records = read_event_log(path, EventLogColumns(case, activity, timestamp),
                             log_name=log_name, timezone=timezone)
    with _progress("import") as bar:
        summary = ingestor.ingest(records, bar)
    _report(summary, as_json)


@main.group(invoke_without_command=True)
@click.option("--all", "show_all", is_flag=True, help="include resolved and dismissed entries")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per entry")
@click.option("--limit", default=50, show_default=True)
@click.pass_context
def quarantine(ctx: click.Context, show_all: bool, as_json: bool, limit: int) -> None:
    """List quarantined records (open ones by default) with the reason for each."""
    if ctx.invoked_subcommand is not None:
        return
    store = open_event_store(_settings())
    entries = store.quarantine(open_only=not show_all, limit=limit)
    total = store.recorder.count_quarantine(open_only=not show_all)
    for entry in entries:
        r = entry.rejection
        if as_json:
            click.echo(json.dumps({
                "id": entry.id, "quarantined_at": entry.quarantined_at.isoformat(),
                "source": r.source, "locator": r.locator, "event_id": r.event_id, "code": r.code,
                "reason": r.reason, "raw": r.raw.decode("utf-8", "replace"),
                "resolved_at": entry.resolved_at.isoformat() if entry.resolved_at else None,
                "resolution": entry.resolution,
            }))
        else:
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
    store = open_event_store(_settings())
    count, after = 0, 0
    with open(out, "wb") as file:
        while entries := store.quarantine(after_id=after, limit=5000):
            for entry in entries:
                file.write(entry.rejection.raw.replace(b"\n", b" ") + b"\n")
                count += 1
            after = entries[-1].id
    click.echo(f"wrote {count:,} records to {out}")


@quarantine.command("retry")
def quarantine_retry() -> None:
    """Validate open entries again (after changing a setting) and store those that pass."""
    settings = _settings()
    ingestor = open_ingestor(settings)
    with _progress("retry") as bar:
        summary = ingestor.retry_quarantine(bar)
    click.echo(f"retried {summary.retried:,}: accepted {summary.accepted:,}, duplicates "
               f"{summary.duplicates:,}, still failing {summary.still_failing:,}, conflicts "
               f"left for review {summary.skipped_conflicts:,}")


@quarantine.command("dismiss")
@click.argument("ids", nargs=-1, type=int, required=True)
@click.option("--note", required=True, help="why nobody will fix these")
def quarantine_dismiss(ids: tuple[int, ...], note: str) -> None:
    """Close entries nobody will fix. They are kept, never deleted."""
    count = open_event_store(_settings()).recorder.dismiss_quarantine(list(ids), note)
    click.echo(f"dismissed {count} of {len(ids)} entries")


@main.command()
@click.option("--json", "as_json", is_flag=True)
def status(as_json: bool) -> None:
    """Where the event store is and what it holds."""
    settings = _settings()
    store = open_event_store(settings)
    facts: dict[str, Any] = {
        "event_store": _where(settings),
        "position": store.position(),
        "quarantine_open": store.recorder.count_quarantine(),
        "quarantine_total": store.recorder.count_quarantine(open_only=False),
        "analytics": str(settings.analytics_path),
        "projection_position": None,
        "projection_updated_at": None,
        "dead_letters": None,
    }
    if settings.analytics_path.exists():
        from journey.projections.publish import query

        _, rows = query(settings.analytics_path, "SELECT position, updated_at, "
                        "(SELECT count(*) FROM dead_letters) FROM projection_status")
        if rows:
            position, updated, dead = rows[0]
            facts.update(projection_position=position, projection_updated_at=str(updated),
                         projection_lag=facts["position"] - position, dead_letters=dead)
    if "JOURNEY_KAFKA_BOOTSTRAP" in os.environ:  # only when Kafka is configured
        from journey.ingest.kafka import consumer_lag

        try:
            lag = consumer_lag(store, settings.kafka_bootstrap, settings.kafka_topic)
            facts.update(consumer_lag=sum(lag.values()), consumer_lag_by_partition=lag)
        except Exception as error:  # noqa: BLE001 - status reports, it does not fail
            facts["consumer_lag"] = f"unknown: Kafka at {settings.kafka_bootstrap} did not answer ({error})"
    if as_json:
        click.echo(json.dumps(facts))
    else:
        for key, value in facts.items():
            click.echo(f"{key:22} {value}")


def _where(settings: Settings) -> str:
    if settings.is_postgres:
        from journey.store.postgres import redact

        return redact(settings.event_store_url)
    return str(settings.sqlite_path)


@main.command()
@click.option("--ambiguous", is_flag=True, help="list identifiers shared by several customers")
@click.option("--json", "as_json", is_flag=True)
def identities(ambiguous: bool, as_json: bool) -> None:
    """Resolve identifiers into canonical customers over the whole store."""
    from journey.projections.identity import identity_map

    result = identity_map(open_event_store(_settings()))
    facts = {
        "identifiers": len(result.canonical_of),
        "customers": len(result.customers),
        "ambiguous_identifiers": len(result.ambiguities),
    }
    if as_json:
        facts["ambiguities"] = [
            {"identifier": f"{a.identifier[0]}:{a.identifier[1]}", "candidates": list(a.candidates)}
            for a in result.ambiguities
        ] if ambiguous else []
        click.echo(json.dumps(facts))
        return
    for key, value in facts.items():
        click.echo(f"{key:22} {value:,}")
    if ambiguous:
        for a in result.ambiguities:
            click.echo(f"{a.identifier[0]}:{a.identifier[1]} is shared by {', '.join(a.candidates)}")


@main.command()
@click.option("--follow", is_flag=True, help="keep following the event store until Ctrl-C or SIGTERM")
@click.option("--interval", default=1.0, show_default=True, help="seconds between polls with --follow")
@click.option("--as-of", "as_of", default=None, help="build what was known at this RFC 3339 moment (needs --out)")
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="the DuckDB file for --as-of")
@click.option("--json", "as_json", is_flag=True)
def project(follow: bool, interval: float, as_of: str | None, out: str | None, as_json: bool) -> None:
    """Catch the DuckDB projection up with the event store and publish it for analysts."""
    from journey.bootstrap import open_pseudonymiser, projection_paths
    from journey.projections import operations

    settings = _settings()
    store = open_event_store(settings)
    pseudonyms = open_pseudonymiser(settings)
    paths = projection_paths(settings)
    if as_of is not None or out is not None:
        if as_of is None or out is None or follow:
            raise InputError("--as-of and --out go together, without --follow")
        moment = _moment(as_of)
        with _progress("project", store.position()) as bar:
            result = operations.build_as_of(store, Path(out), moment, pseudonyms, bar, settings.stage_model_path)
        _project_report(result, Path(out), as_json, f"as of {moment.isoformat()}")
        return
    if follow:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
        click.echo(f"following {_where(settings)} into {paths.snapshot}", err=True)
        operations.follow(store, paths, pseudonyms, interval=interval)
        click.echo("stopped cleanly", err=True)
        return
    with _progress("project", store.position()) as bar:
        result = operations.catch_up(store, paths, pseudonyms, bar)
    _project_report(result, paths.snapshot, as_json, "published")


@main.command()
@click.option("--json", "as_json", is_flag=True)
def rebuild(as_json: bool) -> None:
    """Rebuild the projection from scratch into a new file, then swap it in."""
    from journey.bootstrap import open_pseudonymiser, projection_paths
    from journey.projections import operations

    settings = _settings()
    store = open_event_store(settings)
    with _progress("rebuild", store.position()) as bar:
        result = operations.rebuild(store, projection_paths(settings), open_pseudonymiser(settings), bar)
    _project_report(result, settings.analytics_path, as_json, "rebuilt and published")


@main.command()
@click.argument("target")
@click.option("--json", "as_json", is_flag=True)
def reseal(target: str, as_json: bool) -> None:
    """Copy every event into a NEW store at TARGET (sqlite:///PATH or postgresql://...),
    sealed: brings events stored before sealing under crypto-shredding (docs/privacy.md)."""
    from journey.bootstrap import open_reseal_target
    from journey.privacy.reseal import reseal as copy_sealed

    settings = _settings()
    store = open_event_store(settings)
    with _progress("reseal", store.position()) as bar:
        summary = copy_sealed(store, open_reseal_target(settings, target), progress=bar)
    click.echo(json.dumps(vars(summary)) if as_json else
               f"read {summary.read:,}  written {summary.written:,}  already there {summary.already_there:,}  "
               f"erased before {summary.erased:,}; set JOURNEY_EVENT_STORE to the new store, run `journey rebuild`, "
               "then delete the old store and its backups")


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"--as-of {text!r} is not an RFC 3339 timestamp such as 2025-03-01T00:00:00+03:00") from None
    if moment.tzinfo is None:
        raise InputError(f"--as-of {text!r} has no timezone offset; add one, e.g. +03:00 or Z")
    return moment


def _project_report(result: Any, path: Path, as_json: bool, what: str) -> None:
    facts = {"read": result.read, "loaded": result.loaded, "dead_letters": len(result.poison),
             "position": result.position, "seconds": round(result.seconds, 3), "file": str(path)}
    if as_json:
        click.echo(json.dumps(facts))
        return
    rate = result.read / result.seconds if result.seconds else 0
    click.echo(f"read {result.read:,} events ({rate:,.0f}/s), position {result.position:,}; {what}: {path}")


@main.command()
@click.argument("query_text", metavar="QUERY")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def sql(query_text: str, fmt: str) -> None:
    """Run a read-only SQL query on the published projection (JOURNEY_ANALYTICS)."""
    from journey.projections.publish import query

    columns, rows = query(_settings().analytics_path, query_text)
    if fmt == "json":
        for row in rows:
            click.echo(json.dumps(dict(zip(columns, row, strict=True)), default=str))
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    else:
        _table(columns, rows)


def _table(columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    click.echo("  ".join("-" * w for w in widths))
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
    click.echo(f"({len(rows)} rows)", err=True)


@main.command()
@click.option("--check", is_flag=True, help="exit 1 if the files in DIR differ from the models")
@click.option("--out", "out", default="schemas", show_default=True, type=click.Path(file_okay=False))
def schemas(check: bool, out: str) -> None:
    """Write the JSON Schema of the touch contract (for producers in any language)."""
    from journey.schemas import render_schemas, write_schemas

    if check:
        stale = [n for n, t in render_schemas().items()
                 if not (Path(out) / n).exists() or (Path(out) / n).read_text("utf-8") != t]
        if stale:
            click.echo(f"stale: {', '.join(stale)}; run `journey schemas`", err=True)
            sys.exit(1)
        click.echo("schemas are up to date")
        return
    for path in write_schemas(Path(out)):
        click.echo(f"wrote {path}")


@main.command()
@click.option("--patients", default=3000, show_default=True, help="how many patients to simulate")
@click.option("--seed", default=7, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the ingest summary as JSON")
def demo(patients: int, seed: int, as_json: bool) -> None:
    """Simulate a clinic (fixed seed), ingest it, and show what was stored."""
    from journey.demo import generate_clinic, write_jsonl

    settings = _settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    path = settings.home / f"demo-{seed}-{patients}.jsonl"
    count = write_jsonl(path, generate_clinic(seed=seed, patients=patients))
    click.echo(f"generated {count:,} touches of {patients:,} patients into {path}")
    ingestor = open_ingestor(settings)
    with _progress("ingest") as bar:
        summary = ingestor.ingest(read_jsonl(str(path), max_bytes=settings.max_record_bytes), bar)
    _report(summary, as_json)
    _show_store(ingestor.store, settings)
    _show_projection(ingestor.store, settings)
    from journey.maps.commands import report_into

    report = report_into(settings.analytics_path, settings.home / "report.html")
    click.echo(f"\nthe clinic report: {report.resolve()} (open it in a browser; `journey report` rewrites it)")


def _show_projection(store: Any, settings: Settings) -> None:
    from journey.bootstrap import open_pseudonymiser, projection_paths
    from journey.projections import operations
    from journey.projections.publish import query

    result = operations.catch_up(store, projection_paths(settings), open_pseudonymiser(settings))
    click.echo(f"\nprojected {result.read:,} events into {settings.analytics_path} (query it with "
               "`journey sql` or `duckdb -readonly`)")
    _, [(patients, visited, revenue)] = query(
        settings.analytics_path,
        "SELECT count(*) FILTER (WHERE identified), count(*) FILTER (WHERE visits > 0), "
        "sum(revenue) FROM customers")
    click.echo(f"  patients {patients:,}, of whom {visited:,} visited; revenue {revenue:,.0f}")
    _, stages = query(settings.analytics_path,
                      "SELECT from_stage, to_stage, customers FROM stage_transitions "
                      "ORDER BY customers DESC LIMIT 5")
    for source, target, customers in stages:
        click.echo(f"  {source:>12} -> {target:<12} {customers:>7,} customers")


def _show_store(store: Any, settings: Settings) -> None:
    from journey.projections.identity import identity_map

    types: Counter[str] = Counter()
    for _position, event in store.read():
        types[event.touch.get("activity") or event.touch["type"]] += 1
    result = identity_map(store)
    click.echo(f"\nthe event store at {_where(settings)} holds {sum(types.values()):,} events:")
    for name, n in types.most_common():
        click.echo(f"  {name:20} {n:>9,}")
    click.echo(f"identity: {len(result.canonical_of):,} identifiers resolve to "
               f"{len(result.customers):,} customers; {len(result.ambiguities)} identifiers are "
               "shared by several customers (`journey identities --ambiguous`)")


from journey import _cli_privacy  # noqa: E402,F401  (registers forget, contacts)

# -- journey maps and the clinic report (journey/maps/commands.py) -------------------------
from journey.maps.commands import COMMANDS as _MAP_COMMANDS  # noqa: E402

for _command in _MAP_COMMANDS:
    main.add_command(_command)

# -- funnels, points of failure, attribution (journey/funnels/commands.py) -------------
from journey.funnels.commands import COMMANDS as _FUNNEL_COMMANDS  # noqa: E402

for _command in _FUNNEL_COMMANDS:
    main.add_command(_command)
