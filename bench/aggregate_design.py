"""Which aggregate design should the event store use? Measured, not guessed.

A: one stream per touch (stream id = the producer's event_id, version 1). The
   primary key is the idempotency key: a batch needs one lookup and one insert.
B: one stream per customer (stream id = customer, versions 1..n). Appends must read
   each customer's current version first, and idempotency needs its own table
   because the stream key is no longer the event_id.

Both use the eventsourcing library's SQLite recorder on the same records (the real
hospital-billing log, repeated to N touches), batches of 5000, fresh files.
Run: python bench/aggregate_design.py [N]
"""

from __future__ import annotations

import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson
from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

LOG = Path(__file__).resolve().parents[2] / "shared" / "data" / "hospital_billing_first10k_cases.csv"
BATCH = 5000


def load(n: int) -> list[tuple[str, str, bytes]]:
    with LOG.open() as file:
        rows = list(csv.DictReader(file))
    out = []
    for i in range(n):
        row = rows[i % len(rows)]
        rep = i // len(rows)
        body = orjson.dumps({"touch": {"activity": row["activity"], "occurred_at": row["timestamp"]}})
        out.append((f"log:{i}", f"{row['case_id']}#{rep}", body))
    return out


def recorder(path: str) -> SQLiteApplicationRecorder:
    r = SQLiteApplicationRecorder(SQLiteDatastore(path, originator_id_type="text"))
    r.create_table()
    return r


def per_touch(records: list[tuple[str, str, bytes]], path: str) -> float:
    r = recorder(path)
    start = time.perf_counter()
    for i in range(0, len(records), BATCH):
        batch = records[i : i + BATCH]
        with r.datastore.transaction(commit=False) as c:  # idempotency: which exist?
            ids = [e for e, _, _ in batch]
            c.execute(f"SELECT originator_id FROM stored_events WHERE originator_id IN ({','.join('?' * len(ids))})", ids)
            known = {row[0] for row in c.fetchall()}
        r.insert_events([StoredEvent(e, 1, "t", b) for e, _, b in batch if e not in known])
    return time.perf_counter() - start


def per_customer(records: list[tuple[str, str, bytes]], path: str) -> float:
    r = recorder(path)
    with r.datastore.transaction(commit=True) as c:
        c.execute("CREATE TABLE idempotency (event_id TEXT PRIMARY KEY) WITHOUT ROWID")
    start = time.perf_counter()
    for i in range(0, len(records), BATCH):
        batch = records[i : i + BATCH]
        with r.datastore.transaction(commit=False) as c:
            ids = [e for e, _, _ in batch]
            c.execute(f"SELECT event_id FROM idempotency WHERE event_id IN ({','.join('?' * len(ids))})", ids)
            known = {row[0] for row in c.fetchall()}
            customers = sorted({cust for _, cust, _ in batch})
            version: dict[str, int] = {}
            for j in range(0, len(customers), 900):
                chunk = customers[j : j + 900]
                c.execute(
                    "SELECT originator_id, MAX(originator_version) FROM stored_events "
                    f"WHERE originator_id IN ({','.join('?' * len(chunk))}) GROUP BY originator_id", chunk)
                version.update({row[0]: row[1] for row in c.fetchall()})
        events = []
        for e, cust, body in batch:
            if e in known:
                continue
            version[cust] = version.get(cust, 0) + 1
            events.append(StoredEvent(cust, version[cust], "t", body))
        with r.datastore.transaction(commit=True) as c:
            c.executemany("INSERT INTO idempotency VALUES (?)", [(e,) for e, _, _ in batch if e not in known])
            c.executemany("INSERT INTO stored_events VALUES (?,?,?,?)",
                          [(s.originator_id, s.originator_version, s.topic, s.state) for s in events])
    return time.perf_counter() - start


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    records = load(n)
    results: dict[str, list[float]] = {"A per-touch streams": [], "B per-customer streams": []}
    for run in range(3):
        with tempfile.TemporaryDirectory() as tmp:
            results["A per-touch streams"].append(per_touch(records, f"{tmp}/a.sqlite"))
            results["B per-customer streams"].append(per_customer(records, f"{tmp}/b.sqlite"))
    print(f"{n:,} touches, batches of {BATCH}, 3 runs each (median)")
    medians = {k: statistics.median(v) for k, v in results.items()}
    for name, seconds in medians.items():
        print(f"  {name:24} {n / seconds:>10,.0f} touches/s  ({seconds:.2f} s)")
    a, b = medians.values()
    print(f"  ratio A/B: {b / a:.2f}x")


if __name__ == "__main__":
    main()
