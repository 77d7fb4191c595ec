"""`journey retention` and `journey lifecycle` through the command line, on PostHog's
scenarios ingested as custom touches and projected (tests/cohorts has the engine's)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from tests.cohorts.test_lifecycle import TREND
from tests.cohorts.test_retention import DAY_EVENTS, _date
from tests.commands import journey


def _custom(customer: str, moment: str, n: int) -> bytes:
    when = moment if moment.endswith("Z") else moment + "Z"
    return orjson.dumps({"event_id": f"ph-{customer}-{n}", "type": "custom", "activity": "pageview",
                         "occurred_at": when, "customer": {"customer_id": customer}})


def _home(folder: Path, events: list[tuple[str, str]]) -> Path:
    path = folder / "events.jsonl"
    path.write_bytes(b"\n".join(_custom(c, m, n) for n, (c, m) in enumerate(events)) + b"\n")
    assert journey("ingest", str(path), home=folder).returncode == 0
    projected = journey("project", home=folder)
    assert projected.returncode == 0, projected.stderr
    return folder


@pytest.fixture(scope="module")
def retention_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _home(tmp_path_factory.mktemp("retention"), DAY_EVENTS)


def test_posthog_day_interval_through_the_cli(retention_home: Path) -> None:
    result = journey("retention", "--start", "pageview", "--return", "pageview", "--period", "day",
                     "--intervals", "11", "--to", _date(10, hour=6) + "Z", "--json", home=retention_home)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["period"] == "day" and answer["cohorts"][0]["start"] == "2020-06-10"
    assert [c["retained"] for c in answer["cohorts"]][:7] == [
        [1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0], [2, 2, 1, 0, 1, 2, 0, 0, 0, 0, 0], [2, 1, 0, 1, 2, 0, 0, 0, 0, 0, 0],
        [1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0], [0] * 11, [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]]
    assert all(c["size"] == c["retained"][0] for c in answer["cohorts"])


def test_without_dates_the_cohorts_end_at_the_data_not_today(retention_home: Path) -> None:
    answer = json.loads(journey("retention", "--period", "day", "--intervals", "3", "--json",
                                home=retention_home).stdout)
    assert [c["start"] for c in answer["cohorts"]] == ["2020-06-14", "2020-06-15", "2020-06-16"]
    table = journey("retention", "--period", "day", "--intervals", "3", home=retention_home)
    assert table.returncode == 0 and table.stdout.split("\n")[0].split() == ["cohort", "size", "day", "0", "day",
                                                                             "1", "day", "2"]


def test_posthog_lifecycle_trend_through_the_cli(tmp_path: Path) -> None:
    home = _home(tmp_path, TREND)
    result = journey("lifecycle", "--event", "pageview", "--period", "day", "--from", "2020-01-12",
                     "--to", "2020-01-19", "--json", home=home)
    assert result.returncode == 0, result.stderr
    periods = json.loads(result.stdout)["periods"]
    assert [p["dormant"] for p in periods] == [0, 2, 1, 0, 2, 0, 1, 0]
    assert [p["new"] for p in periods] == [1, 0, 0, 1, 0, 0, 0, 0]
    assert [p["resurrecting"] for p in periods] == [1, 0, 0, 1, 0, 1, 0, 1]
    assert [p["returning"] for p in periods] == [1, 1, 0, 0, 0, 0, 0, 0]


@pytest.mark.parametrize("args", [("retention", "--timezone", "Mars/Base"), ("retention", "--to", "2020-06-10T10:00"),
                                  ("lifecycle", "--from", "2021-01-01", "--to", "2020-01-01"),
                                  ("retention", "--intervals", "0")])
def test_bad_input_is_one_clear_line(retention_home: Path, args: tuple[str, ...]) -> None:
    result = journey(*args, home=retention_home)
    assert result.returncode == 2 and result.stderr.startswith("error: ") and "Traceback" not in result.stderr
