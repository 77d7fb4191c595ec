"""Commands on Kafka: produce touches to a topic, ingest a topic into the event store."""

from __future__ import annotations

import logging
import signal
import sys
import threading

import click

from journey.cli._common import adapters, print_ingest, progress

__all__ = ["COMMANDS"]


@click.command()
@click.argument("path")
@click.option("--bootstrap", default=None, help="Kafka bootstrap servers (JOURNEY_KAFKA_BOOTSTRAP)")
@click.option("--topic", default=None, help="the touches topic (JOURNEY_KAFKA_TOPIC)")
def produce(path: str, bootstrap: str | None, topic: str | None) -> None:
    """Send a JSON Lines file of touches to Kafka, validating each one first.

    Invalid lines are reported with their reason and not sent."""
    from journey.errors import InvalidTouchError

    wired = adapters()
    sent = refused = 0
    with wired.producer(bootstrap, topic) as producer, progress("produce") as bar:
        for record in wired.read_jsonl(path):
            try:
                producer.send(record.raw)
                sent += 1
            except InvalidTouchError as error:
                refused += 1
                click.echo(f"{record.locator}: not sent: {error.reason}", err=True)
            bar(1)
    click.echo(f"sent {sent:,} touches to {producer.topic}; refused {refused:,}")


@click.command("ingest-kafka")
@click.option("--bootstrap", default=None, help="Kafka bootstrap servers (JOURNEY_KAFKA_BOOTSTRAP)")
@click.option("--topic", default=None, help="the touches topic (JOURNEY_KAFKA_TOPIC)")
@click.option("--group", default=None, help="the consumer group (JOURNEY_KAFKA_GROUP)")
@click.option("--until-idle", type=float, default=None, help="exit once nothing arrived for this many seconds")
@click.option("--json", "as_json", is_flag=True, help="print the summary as one JSON object")
def ingest_kafka(bootstrap: str | None, topic: str | None, group: str | None, until_idle: float | None,
                 as_json: bool) -> None:
    """Consume touches from Kafka into the event store, exactly once (stops on SIGTERM)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("kafka").setLevel(logging.WARNING)
    wired = adapters()
    worker = wired.kafka_worker(bootstrap, topic, group)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    logging.getLogger("journey.kafka").info("consuming %s as group %s into %s", worker.settings.topic,
                                            worker.settings.group, wired.event_store_location)
    with progress("ingest-kafka") as bar:
        summary = worker.run(stop=stop, until_idle=until_idle, progress=bar)
    print_ingest(summary, as_json)


COMMANDS = (produce, ingest_kafka)
