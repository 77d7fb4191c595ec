"""The projection commands as a user runs them, including signals and kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.commands import demo, journey

PYTHON = [sys.executable, "-m", "journey"]


def env(home: Path, **extra: str) -> dict[str, str]:
    environment = {**os.environ, "JOURNEY_HOME": str(home), **extra}
    environment.pop("JOURNEY_EVENT_STORE", None)
    return environment


def test_project_then_query_in_every_format(tmp_path: Path) -> None:
    stored = demo(tmp_path)
    projected = json.loads(journey("project", "--json", home=tmp_path).stdout)
    assert (projected["read"], projected["position"]) == (stored, stored)
    again = json.loads(journey("project", "--json", home=tmp_path).stdout)
    assert (again["read"], again["position"]) == (0, stored)
    as_json = journey("sql", "SELECT count(*) AS n FROM touchpoints WHERE type <> 'referred_friend'",
                      "--format", "json", home=tmp_path)  # the stored touches, not the derived referral credits
    assert json.loads(as_json.stdout) == {"n": stored}
    as_csv = journey("sql", "SELECT type, count(*) AS n FROM touchpoints GROUP BY 1 ORDER BY 1", "--format", "csv", home=tmp_path)
    assert as_csv.stdout.splitlines()[0] == "type,n"
    table = journey("sql", "SELECT count(*) AS n FROM customers", home=tmp_path)
    assert table.stdout.splitlines()[0].strip() == "n"
    status = json.loads(journey("status", "--json", home=tmp_path).stdout)
    assert (status["projection_position"], status["projection_lag"]) == (stored, 0)


def test_sql_before_any_projection_says_what_to_do(tmp_path: Path) -> None:
    result = journey("sql", "SELECT 1", home=tmp_path)
    assert result.returncode == 2
    assert "run `journey project`" in result.stderr


def test_follow_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    demo(tmp_path, 50)
    follower = subprocess.Popen([*PYTHON, "project", "--follow", "--interval", "0.2"], env=env(tmp_path),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert follower.stderr is not None
    for line in follower.stderr:  # wait until it is following (its signal handlers are set)
        if "following the event store" in line:
            break
    else:
        raise AssertionError("the follower ended before it started following")
    follower.send_signal(signal.SIGTERM)
    _, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert "stopped cleanly" in err
    assert journey("project", "--json", home=tmp_path).returncode == 0  # lock released


def test_kill_9_mid_catch_up_loses_and_doubles_nothing(tmp_path: Path) -> None:
    stored = demo(tmp_path, 1000)
    small = env(tmp_path, JOURNEY_PROJECTION_BATCH="10")
    victim = subprocess.Popen([*PYTHON, "project"], env=small, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    working = tmp_path / "projection.duckdb"
    deadline = time.monotonic() + 60
    while not working.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    victim.kill()
    assert victim.wait() == -signal.SIGKILL, "the catch-up finished before it could be killed"
    assert not (tmp_path / "analytics.duckdb").exists()
    # the resumed run takes the default batch: what is proved is resuming from the tracked position
    resumed = subprocess.run([*PYTHON, "project", "--json"], env=env(tmp_path), capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    counts = journey("sql", "SELECT count(*) AS n, count(DISTINCT event_id) AS d, max(position) AS p FROM touchpoints "
                     "WHERE type <> 'referred_friend'",
                     "--format", "json", home=tmp_path)
    assert json.loads(counts.stdout) == {"n": stored - 0, "d": stored, "p": stored}
    edges_now = journey("sql", "SELECT * FROM journey_edges ORDER BY source, target", "--format", "csv", home=tmp_path).stdout
    assert journey("rebuild", home=tmp_path).returncode == 0
    edges_rebuilt = journey("sql", "SELECT * FROM journey_edges ORDER BY source, target", "--format", "csv", home=tmp_path).stdout
    assert edges_now == edges_rebuilt


def test_as_of_needs_an_offset_and_an_out_file(tmp_path: Path) -> None:
    demo(tmp_path, 20)
    assert "timezone offset" in journey("project", "--as-of", "2025-01-01T00:00:00", "--out", str(tmp_path / "x.duckdb"), home=tmp_path).stderr
    assert "go together" in journey("project", "--as-of", "2025-01-01T00:00:00Z", home=tmp_path).stderr
    ok = journey("project", "--as-of", "2025-06-01T00:00:00Z", "--out", str(tmp_path / "x.duckdb"), "--json", home=tmp_path)
    assert ok.returncode == 0, ok.stderr
