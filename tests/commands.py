"""Running ``journey`` as a user runs it: a real process on a real JOURNEY_HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["demo", "journey"]


def journey(*args: str, home: Path, stdin: bytes | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "JOURNEY_HOME": str(home), **env}
    environment.pop("JOURNEY_EVENT_STORE", None) if "JOURNEY_EVENT_STORE" not in env else None
    return subprocess.run(
        [sys.executable, "-m", "journey", *args], env=environment, input=stdin.decode() if stdin else None,
        capture_output=True, text=True, timeout=300,
    )


def demo(home: Path, patients: int = 200) -> int:
    """A stored (not yet projected) demo clinic; returns how many touches."""
    from journey.demo import generate_clinic, write_jsonl

    path = home / "clinic.jsonl"
    write_jsonl(path, generate_clinic(seed=3, patients=patients))
    result = journey("ingest", str(path), "--json", home=home)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["accepted"]
