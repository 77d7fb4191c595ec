"""Where records come from: JSON Lines files and process-mining event logs (CSV).

Each record is ``RawRecord(source, locator, raw)``: the bytes as read, and where,
so a rejected record can be found and fixed.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import BinaryIO, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from journey.errors import InputError
from journey.limits import MAX_RECORD_BYTES

__all__ = ["EventLogColumns", "RawRecord", "read_event_log", "read_jsonl"]


class RawRecord(NamedTuple):
    """One record as read: where it came from and its bytes."""

    source: str
    locator: str
    raw: bytes


def _open(path: str) -> tuple[BinaryIO, str]:
    if path == "-":
        return sys.stdin.buffer, "stdin"
    try:
        return open(path, "rb"), path  # noqa: SIM115
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror}") from None


def read_jsonl(path: str, *, max_bytes: int = MAX_RECORD_BYTES) -> Iterator[RawRecord]:
    """One record per non-blank line. A line over ``max_bytes`` is read in chunks
    and kept truncated (with a marker), so one huge line cannot exhaust memory."""
    stream, source = _open(path)
    try:
        for line_no, line in enumerate(_lines(stream, max_bytes), start=1):
            if line.strip():
                yield RawRecord(source, f"line {line_no}", line)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def _lines(stream: BinaryIO, max_bytes: int, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """Lines without their end of line, read 1 MiB at a time. A line longer than
    ``max_bytes`` is never held whole: its head is kept with a truncation marker."""
    tail = b""
    dropped = 0  # bytes of an oversized line skipped so far
    while chunk := stream.read(chunk_size):
        lines = (tail + chunk).split(b"\n")
        tail = lines.pop()
        for line in lines:
            if dropped:
                yield _truncated(line, dropped + len(line), max_bytes)
                dropped = 0
            elif len(line) > max_bytes:
                yield _truncated(line, len(line), max_bytes)
            else:
                yield line.removesuffix(b"\r")
        if len(tail) > max_bytes:  # an oversized line still going: keep only its head
            dropped += len(tail) - max_bytes
            tail = tail[:max_bytes]
    if dropped:
        yield _truncated(tail, dropped + len(tail), max_bytes)
    elif tail:
        yield tail.removesuffix(b"\r") if len(tail) <= max_bytes else _truncated(tail, len(tail), max_bytes)


def _truncated(head: bytes, size: int, max_bytes: int) -> bytes:
    return head[:max_bytes] + f"...[truncated: {size} bytes]".encode()


@dataclass(frozen=True)
class EventLogColumns:
    case: str
    activity: str
    timestamp: str


def read_event_log(
    path: str,
    columns: EventLogColumns,
    *,
    log_name: str | None = None,
    timezone: str | None = None,
    channel: str | None = None,
) -> Iterator[RawRecord]:
    """Rows of a ``case, activity, timestamp`` log as custom touches, one customer per case.

    ``event_id`` is ``log:<log_name>:<row>``, so importing the same file again stores
    nothing twice. Case ids are kept as written (``NA`` is a case id). Timestamps
    without an offset are read in ``timezone`` when given, else quarantined.
    """
    stream, source = _open(path)
    name = log_name or Path(source).stem
    zone = _zone(timezone)
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="strict", newline="")
    reader = csv.DictReader(text)
    missing = [c for c in (columns.case, columns.activity, columns.timestamp) if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(
            f"{source} has no column {', '.join(map(repr, missing))}; its columns are "
            f"{', '.join(reader.fieldnames or [])} (choose with --case, --activity, --timestamp)"
        )
    row_no = 0
    try:
        for row_no, row in enumerate(reader, start=1):
            touch = {
                "event_id": f"log:{name}:{row_no}",
                "type": "custom",
                "activity": row[columns.activity],
                "occurred_at": _timestamp(row[columns.timestamp], zone),
                "customer": {"customer_id": row[columns.case]},
                "source": f"log:{name}",
            }
            if channel:
                touch["channel"] = channel
            yield RawRecord(source, f"row {row_no}", orjson.dumps(touch))
    except UnicodeDecodeError:
        raise InputError(f"{source} is not UTF-8 after row {row_no}; re-export it as UTF-8") from None
    finally:
        if stream is not sys.stdin.buffer:
            text.detach()
            stream.close()


def _zone(name: str | None) -> ZoneInfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"unknown time zone {name!r}; use an IANA name such as Europe/Moscow") from None


def _timestamp(text: str, zone: ZoneInfo | None) -> str:
    """RFC 3339 if the log gives an offset; local times are placed in ``zone``."""
    value = text.strip()
    if zone is None:
        return value  # the contract rejects a naive timestamp with a clear reason
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
        if len(value) == 10:  # a date without a time of day: midnight, local
            parsed = datetime.combine(date.fromisoformat(value), datetime.min.time(), zone)
    return parsed.isoformat()
