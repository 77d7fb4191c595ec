"""The command line, run as a user runs it: a real process on a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.commands import journey
from tests.touches import raw, touch


def test_ingest_prints_the_summary_as_json(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join([raw(touch(event_id="a")), raw(touch(event_id="a")), b"oops"]))
    result = journey("ingest", str(path), "--json", home=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert {k: summary[k] for k in ("read", "accepted", "duplicates", "quarantined")} == {
        "read": 3, "accepted": 1, "duplicates": 1, "quarantined": 1}
    assert (tmp_path / "events.sqlite").exists()


def test_ingest_reads_stdin(tmp_path: Path) -> None:
    result = journey("ingest", "-", "--json", home=tmp_path, stdin=raw(touch()) + b"\n")
    assert json.loads(result.stdout)["accepted"] == 1


def test_quarantine_lists_reasons_and_exports_for_fixing(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(raw(touch(event_id="n", occurred_at="2025-03-01T09:30:00")) + b"\n")
    journey("ingest", str(path), home=tmp_path)
    listed = journey("quarantine", "--json", home=tmp_path)
    [entry] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert entry["code"] == "naive_timestamp"
    assert entry["locator"] == "line 1"
    out = tmp_path / "fix.jsonl"
    journey("quarantine", "export", str(out), home=tmp_path)
    out.write_text(out.read_text().replace("09:30:00", "09:30:00+03:00"))
    fixed = journey("ingest", str(out), "--json", home=tmp_path)
    assert json.loads(fixed.stdout)["accepted"] == 1
    assert journey("quarantine", "--json", home=tmp_path).stdout == ""


def test_import_log_on_a_real_log_is_idempotent(tmp_path: Path, data_dir: Path) -> None:
    log = str(data_dir / "helpdesk.csv")
    first = json.loads(journey("import-log", log, "--case", "case_id", "--activity", "activity",
                               "--timestamp", "timestamp", "--json", home=tmp_path).stdout)
    assert (first["read"], first["accepted"], first["quarantined"]) == (21348, 21348, 0)
    again = json.loads(journey("import-log", log, "--json", home=tmp_path).stdout)
    assert (again["accepted"], again["duplicates"]) == (0, 21348)
    identities = json.loads(journey("identities", "--json", home=tmp_path).stdout)
    assert identities["customers"] == 4580


def test_status_shows_position_and_quarantine(tmp_path: Path) -> None:
    journey("ingest", "-", home=tmp_path, stdin=raw(touch()) + b"\nbad\n")
    status = json.loads(journey("status", "--json", home=tmp_path).stdout)
    assert (status["position"], status["quarantine_open"]) == (1, 1)


def test_ingest_then_wait_until_the_projection_holds_it(tmp_path: Path) -> None:
    first = json.loads(journey("ingest", "-", "--json", home=tmp_path, stdin=raw(touch(event_id="a")) + b"\n").stdout)
    assert first["position"] == 1
    again = json.loads(journey("ingest", "-", "--json", home=tmp_path, stdin=raw(touch(event_id="a")) + b"\n").stdout)
    assert (again["accepted"], again["duplicates"], again["position"]) == (0, 1, 1)
    unpublished = journey("status", "--wait", "1", "--timeout", "0.2", home=tmp_path)
    assert unpublished.returncode == 2
    assert "position 1 was not published within 0.2 s: nothing was published at" in unpublished.stderr
    assert "journey project --follow" in unpublished.stderr
    assert journey("project", home=tmp_path).returncode == 0
    waited = journey("status", "--wait", str(first["position"]), "--json", home=tmp_path)
    assert waited.returncode == 0, waited.stderr
    status = json.loads(waited.stdout)
    assert (status["projection_position"], status["projection_lag"], status["projection_lag_seconds"]) == (1, 0, 0.0)
    assert status["projection_published_at"] is not None
    text = journey("status", home=tmp_path).stdout
    assert any(line.split()[:2] == ["projection_lag_seconds", "0.0"] for line in text.splitlines()), text


def test_errors_are_one_line_with_what_to_do(tmp_path: Path) -> None:
    result = journey("ingest", str(tmp_path / "missing.jsonl"), home=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: cannot read {tmp_path / 'missing.jsonl'}: No such file or directory"


def test_unreachable_postgres_says_so_without_the_password(tmp_path: Path) -> None:
    result = journey("status", home=tmp_path, JOURNEY_EVENT_STORE="postgresql://u:hunter2@127.0.0.1:1/db")
    assert result.returncode == 2
    assert "cannot reach the PostgreSQL event store" in result.stderr
    assert "hunter2" not in result.stderr


def test_the_cli_works_on_postgres(tmp_path: Path, pg_url: str) -> None:
    result = journey("ingest", "-", "--json", home=tmp_path, stdin=raw(touch()) + b"\n",
                     JOURNEY_EVENT_STORE=pg_url)
    assert json.loads(result.stdout)["accepted"] == 1
    status = json.loads(journey("status", "--json", home=tmp_path, JOURNEY_EVENT_STORE=pg_url).stdout)
    assert status["position"] == 1
    assert not (tmp_path / "events.sqlite").exists()


def test_schemas_check_passes_on_the_committed_files(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    result = journey("schemas", "--check", "--out", str(root / "schemas"), home=tmp_path)
    assert result.returncode == 0, result.stderr
    stale = journey("schemas", "--check", "--out", str(tmp_path), home=tmp_path)
    assert stale.returncode == 1


def test_demo_ingests_a_clinic_and_shows_what_was_stored(tmp_path: Path) -> None:
    result = journey("demo", "--patients", "300", "--json", home=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    summary = json.loads(lines[1])
    assert summary["read"] == summary["accepted"] > 2000
    assert "identity:" in result.stdout
    for kind in ("call", "booking", "visit", "ad_spend", "no_show", "review", "referral"):
        assert any(line.split()[:1] == [kind] for line in lines), kind
    again = journey("demo", "--patients", "300", "--json", home=tmp_path)
    assert json.loads(again.stdout.splitlines()[1])["duplicates"] == summary["read"]


@pytest.mark.parametrize("command", ["ingest", "import-log", "quarantine", "status", "identities", "demo"])
def test_every_command_has_help(command: str, tmp_path: Path) -> None:
    result = journey(command, "--help", home=tmp_path)
    assert result.returncode == 0
    assert "Usage:" in result.stdout


def test_a_command_runs_on_the_adapters_it_is_given(tmp_path: Path) -> None:
    """The composition root is replaceable: the same command on an in-memory store
    (no file is created under JOURNEY_HOME)."""
    from click.testing import CliRunner

    from journey.bootstrap import Adapters
    from journey.cli import main
    from journey.config import Settings
    from journey.store.recorder import InMemoryJourneyRecorder
    from tests.stores import PSEUDONYMS, sealed

    store = sealed(InMemoryJourneyRecorder())
    home = tmp_path / "home"
    wired = Adapters(Settings.from_env({"JOURNEY_HOME": str(home), "JOURNEY_INGEST_WORKERS": "0"}),
                     store=store, pseudonymiser=PSEUDONYMS)
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join([raw(touch(event_id="a")), raw(touch(event_id="b")), b"oops"]) + b"\n")
    runner = CliRunner()
    ingested = runner.invoke(main, ["ingest", str(path), "--json"], obj=wired)
    assert ingested.exit_code == 0, ingested.output
    assert {k: json.loads(ingested.stdout)[k] for k in ("accepted", "quarantined")} == {"accepted": 2, "quarantined": 1}
    status = json.loads(runner.invoke(main, ["status", "--json"], obj=wired).stdout)
    assert (status["position"], status["quarantine_open"], status["projection_position"]) == (store.position(), 1, None)
    assert store.position() >= 2
    assert not home.exists()
