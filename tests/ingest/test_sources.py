"""Record sources: JSON Lines and process-mining CSV logs."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from journey.domain.touch import parse_touch
from journey.errors import InputError
from journey.ingest.sources import EventLogColumns, _lines, read_event_log, read_jsonl

COLUMNS = EventLogColumns("case_id", "activity", "timestamp")


def test_jsonl_skips_blank_lines_and_numbers_lines(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"a":1}\n\n   \n{"b":2}\r\n{"c":3}')
    got = [(r.locator, r.raw) for r in read_jsonl(str(path))]
    assert got == [("line 1", b'{"a":1}'), ("line 4", b'{"b":2}'), ("line 5", b'{"c":3}')]


def test_a_huge_line_is_truncated_not_loaded(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"a":1}\n' + b"x" * 5_000_000 + b'\n{"b":2}\n')
    got = list(read_jsonl(str(path), max_bytes=1024))
    assert [r.locator for r in got] == ["line 1", "line 2", "line 3"]
    assert len(got[1].raw) < 1100
    assert b"truncated: 5000000 bytes" in got[1].raw


def test_missing_file_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="cannot read /nonexistent.jsonl"):
        list(read_jsonl("/nonexistent.jsonl"))


def test_event_log_rows_become_custom_touches(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("case_id,activity,timestamp\nNA,NEW,2012-12-16T19:33:10.000Z\nNA,FIN,2012-12-17T10:00:00Z\n")
    rows = list(read_event_log(str(path), COLUMNS))
    touches = [parse_touch(r.raw) for r in rows]
    assert [t.customer.customer_id for t in touches] == ["NA", "NA"]  # a case id, not a missing value
    assert [t.activity_name for t in touches] == ["NEW", "FIN"]
    assert [t.event_id for t in touches] == ["log:log:1", "log:log:2"]


def test_naive_log_timestamps_need_a_timezone(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("case_id,activity,timestamp\nc1,A,2012-12-16 19:33:10\nc1,B,2012-12-17\n")
    naive = [orjson.loads(r.raw)["occurred_at"] for r in read_event_log(str(path), COLUMNS)]
    assert naive == ["2012-12-16 19:33:10", "2012-12-17"]  # left for the contract to reject
    placed = [parse_touch(r.raw).occurred_at.isoformat()
              for r in read_event_log(str(path), COLUMNS, timezone="Europe/Amsterdam")]
    assert placed == ["2012-12-16T19:33:10+01:00", "2012-12-17T00:00:00+01:00"]


def test_missing_column_names_the_columns_there_are(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("case,act,ts\n1,A,2012-12-16T19:33:10Z\n")
    with pytest.raises(InputError, match="its columns are case, act, ts"):
        list(read_event_log(str(path), COLUMNS))


def test_unknown_timezone_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("case_id,activity,timestamp\n")
    with pytest.raises(InputError, match="unknown time zone"):
        list(read_event_log(str(path), COLUMNS, timezone="Mars/Olympus"))


def test_real_log_keeps_every_row_in_file_order(data_dir: Path) -> None:
    path = data_dir / "hospital_billing_first10k_cases.csv"
    with path.open() as file:
        expected = [(r["case_id"], r["activity"]) for r in csv.DictReader(file)]
    got = [(t["customer"]["customer_id"], t["activity"])
           for t in (orjson.loads(r.raw) for r in read_event_log(str(path), COLUMNS))]
    assert got == expected
    assert ("NA", "NEW") in got


@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=30),
       st.integers(min_value=1, max_value=50), st.booleans())
def test_chunked_line_reader_matches_splitlines(lines: list[bytes], chunk: int, final_newline: bool) -> None:
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    got = list(_lines(io.BytesIO(data), max_bytes=1000, chunk_size=chunk))
    expected = [line.removesuffix(b"\r") for line in data.split(b"\n")]
    if data.endswith(b"\n") or not data:
        expected.pop()
    assert got == expected


@given(st.integers(min_value=1, max_value=200), st.integers(min_value=1, max_value=64))
def test_oversized_lines_are_cut_at_any_chunk_boundary(size: int, chunk: int) -> None:
    data = b"ok\n" + b"y" * size + b"\nend"
    got = list(_lines(io.BytesIO(data), max_bytes=16, chunk_size=chunk))
    assert got[0] == b"ok" and got[-1] == b"end" and len(got) == 3
    if size > 16:
        assert got[1] == b"y" * 16 + f"...[truncated: {size} bytes]".encode()
    else:
        assert got[1] == b"y" * size
