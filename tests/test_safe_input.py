"""Safe input and safe output across the command line: injection strings reach SQL
only as parameters or are refused; malicious payloads are rejected without
exhausting memory; secrets never appear in output or in the analytics file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_privacy import clinic
from tests.commands import journey
from tests.touches import raw, touch

INJECTIONS = [
    "'; DROP TABLE customers; --",
    "x' OR '1'='1",
    "1); DELETE FROM touchpoints; --",
    '"; ATTACH \'/tmp/evil.duckdb\' AS evil; --',
    "customer_id FROM customers; COPY customers TO '/tmp/leak.csv'; --",
]


def _intact(home: Path) -> None:
    result = journey("sql", "SELECT (SELECT count(*) FROM customers) AS c, (SELECT count(*) FROM touchpoints) AS t",
                     "--format", "json", home=home)
    assert json.loads(result.stdout) == {"c": 2, "t": 6}, result.stdout  # one JSON object a row


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clinic")
    clinic(path)
    return path


@pytest.mark.parametrize("evil", INJECTIONS)
def test_injection_in_a_customer_list_is_only_data(home: Path, evil: str) -> None:
    result = journey("contacts", "-", "--channel", "sms", "--include-without-consent", home=home,
                     stdin=(evil + "\n").encode())
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["customer_id,clinic_id,contact"]
    _intact(home)


@pytest.mark.parametrize("evil", INJECTIONS)
def test_injection_in_a_customer_to_forget_finds_nobody(home: Path, evil: str) -> None:
    result = journey("forget", evil, "--yes", home=home)
    assert result.returncode == 2 and "no customer" in result.stderr
    _intact(home)


@pytest.mark.parametrize(("args", "words"), [
    (["contacts", "-", "--channel", "sms' OR 1=1"], "Invalid value for '--channel'"),
    (["contacts", "-", "--channel", "sms", "--purpose", "marketing; DROP"], "Invalid value for '--purpose'"),
    (["contacts", "--recall-days", "180", "--channel", "sms", "--as-of", "2025-01-01'; DROP TABLE x; --"],
     "not an RFC 3339 timestamp"),
    (["project", "--as-of", "2025'; DROP TABLE customers; --", "--out", "x.duckdb"], "not an RFC 3339 timestamp"),
    (["sql", "DROP TABLE customers"], "read-only"),
    (["sql", "COPY customers TO '/tmp/journey-leak.csv'"], "file system operations are disabled"),
    (["sql", "SELECT * FROM read_csv('/etc/passwd')"], "file system operations are disabled"),
    (["sql", "ATTACH '/tmp/journey-evil.duckdb' AS evil"], "disabled"),
])
def test_malicious_options_are_refused_with_a_reason(home: Path, args: list[str], words: str) -> None:
    result = journey(*args, home=home, stdin=b"")
    assert result.returncode != 0
    assert words.lower() in result.stderr.lower(), result.stderr
    _intact(home)


# VmHWM is this process image's own peak (ru_maxrss would include the forking pytest's)
PEAK = ("import atexit, re, sys; atexit.register(lambda: sys.stderr.write('PEAK ' + re.search("
        "r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))); from journey.cli import main; main()")


def test_malicious_payloads_are_quarantined_with_reasons_in_bounded_memory(tmp_path: Path) -> None:
    deep = b'{"event_id":"d","type":"custom","activity":"x","occurred_at":"2025-03-01T10:00:00Z",' \
           b'"customer":{"customer_id":"P"},"properties":{"x":' + b"[" * 20_000 + b"]" * 20_000 + b"}}"
    lines = [
        b'{"event_id":"big","type":"call","note":"' + b"A" * 50_000_000 + b'"}',   # 50 MB on one line
        deep,                                                                         # billion-laughs-style nesting
        b'{"event_id":"u","type":"call","customer":{"phone":"\xff\xfe"}}',            # invalid UTF-8
        raw(touch("payment", "n")).replace(b'"1500.00"', b"NaN"),                    # NaN money
        raw(touch("payment", "i")).replace(b'"1500.00"', b"Infinity"),               # Infinity money
    ]
    path = tmp_path / "evil.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = subprocess.run(  # the CLI in a process that reports its own peak memory at exit
        [sys.executable, "-c", PEAK, "ingest", str(path), "--json"], capture_output=True, text=True, timeout=300,
        env={**os.environ, "JOURNEY_HOME": str(tmp_path), "JOURNEY_INGEST_WORKERS": "0"})
    assert json.loads(result.stdout)["quarantined"] == 5, result.stderr
    peak_kib = int(result.stderr.rsplit("PEAK ", 1)[1])
    assert peak_kib < 300 * 1024, f"the ingest process peaked at {peak_kib / 1024:.0f} MiB for a 50 MB line"
    listed = journey("quarantine", "--json", home=tmp_path)
    codes = sorted(json.loads(line)["code"] for line in listed.stdout.splitlines())
    assert codes == ["bad_encoding", "bad_json", "invalid_value", "invalid_value", "oversized"], codes
    reasons = " ".join(json.loads(line)["reason"] for line in listed.stdout.splitlines())
    assert "UTF-8" in reasons and "recursion limit" in reasons and "65536-byte limit" in reasons
    by_line = {json.loads(line)["locator"]: json.loads(line)["code"] for line in listed.stdout.splitlines()}
    assert by_line["line 4"] == by_line["line 5"] == "invalid_value"  # NaN and Infinity money


def test_secrets_never_reach_output_or_the_analytics_file(tmp_path: Path) -> None:
    secret, master = "s3cret-hmac-value-0123456789", "ab" * 32
    env = {"JOURNEY_HMAC_SECRET": secret, "JOURNEY_MASTER_KEY": master}
    clinic_home = tmp_path
    from tests.cli.test_privacy import ANNA

    (clinic_home / "in.jsonl").write_bytes(raw(touch("booking", "b1", customer=ANNA)) + b"\n")
    outputs = []
    for args in (["ingest", str(clinic_home / "in.jsonl")], ["project"], ["status"], ["identities"]):
        result = journey(*args, home=clinic_home, **env)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout + result.stderr)
    bad = journey("status", home=clinic_home, JOURNEY_EVENT_STORE="postgresql://u:hunter2@127.0.0.1:1/x")
    outputs.append(bad.stdout + bad.stderr)
    assert bad.returncode == 2 and "***" in bad.stderr
    text = "\n".join(outputs)
    for value in (secret, master, "hunter2"):
        assert value not in text
    data = (clinic_home / "analytics.duckdb").read_bytes() + (clinic_home / "projection.duckdb").read_bytes()
    assert secret.encode() not in data and master.encode() not in data and bytes.fromhex(master) not in data


def test_a_readable_master_key_file_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "master.key"
    key.write_text("cd" * 32)
    key.chmod(0o644)
    result = journey("status", home=tmp_path)
    assert result.returncode == 2 and "chmod 600" in result.stderr
    assert "cd" * 32 not in result.stderr
