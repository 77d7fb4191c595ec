"""docker-compose.yml matches the project: Docker does not run here, so this reads
the file and checks every journey service's command and environment against the CLI
and the settings. The same topology runs in tests/kafka with the broker and
PostgreSQL started directly."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
import yaml

from journey.cli import main
from journey.config import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
JOURNEY_SERVICES = {name: s for name, s in COMPOSE["services"].items() if s.get("image", "").startswith("journey")}
KNOWN = set(re.findall(r'"(JOURNEY_[A-Z_]+)"', (ROOT / "journey" / "config.py").read_text()))


def test_the_topology_is_complete() -> None:
    services = COMPOSE["services"]
    assert {"kafka", "postgres", "ingest", "projector"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka")
    assert "broker,controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft
    for name in ("kafka", "postgres", "projector"):
        assert "healthcheck" in services[name], name
    assert set(COMPOSE["volumes"]) >= {"kafka-data", "postgres-data", "analytics"}


@pytest.mark.parametrize("name", sorted(JOURNEY_SERVICES))
def test_each_command_is_a_real_journey_command(name: str) -> None:
    words = JOURNEY_SERVICES[name]["command"]
    command = main.commands[words[0]]
    options = {o for p in command.params if isinstance(p, click.Option) for o in p.opts}
    flags = [w for w in words[1:] if w.startswith("--")]
    assert set(flags) <= options, (name, flags)
    ctx = command.make_context(words[0], list(words[1:]))  # parses, or raises
    assert ctx.params is not None


@pytest.mark.parametrize("name", sorted(JOURNEY_SERVICES))
def test_each_environment_is_a_valid_configuration(name: str) -> None:
    environment = {k: str(v) for k, v in JOURNEY_SERVICES[name]["environment"].items()}
    unknown = {k for k in environment if k.startswith("JOURNEY_")} - KNOWN
    assert not unknown, unknown
    expanded = {k: re.sub(r"\$\{(\w+):-([^}]*)\}", r"\2", v) for k, v in environment.items()}
    settings = Settings.from_env(expanded)
    assert settings.is_postgres  # several workers need PostgreSQL (SQLite has one writer)
    assert settings.kafka_bootstrap == "kafka:9092"


def test_workers_scale_out_and_stop_gracefully() -> None:
    ingest = COMPOSE["services"]["ingest"]
    assert ingest["deploy"]["replicas"] >= 2
    assert ingest["stop_signal"] == "SIGTERM"
    assert COMPOSE["services"]["projector"]["stop_signal"] == "SIGTERM"
