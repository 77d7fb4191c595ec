"""Key store micro-benchmark: ``KeyStore.entries_for`` on a growing SQLite key store.

Each batch asks for ``--new`` subjects the store has never seen (as an ingest meets new
customers: every ingest key lookup of the 1M demo found a new subject) until the store
holds ``--keys`` keys (and then ``--timed`` keys more: what is reported); reports the CPU
a new key takes in the lookup (``_select``), in the insert (``_insert``) and in all of
``entries_for`` (key making included), and the wall time of ``entries_for`` a new key (its
commits wait for the disk: with the Kafka worker's small batches, ``--new 100``, that is
what differs). Variants, alternated in their own processes: ``4096``, ``16384``, ``32768``
(the page size the file is made with before the key store opens it, which keeps it).

Run:  python bench/key_store_insert.py [--keys 250000] [--new 2900] [--timed 0] [--runs 3] [--variants 4096,16384]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

_SCHEMA = ("CREATE TABLE journey_keys (subject TEXT PRIMARY KEY, kind TEXT NOT NULL, key_id TEXT NOT NULL UNIQUE, "
           "wrapped BLOB NOT NULL, sealed BLOB NOT NULL, created_at TEXT NOT NULL)")


_FILL = 5000
"""Keys a batch while the store is filled before ``--timed`` keys are measured."""


def child(page_size: int, keys: int, new: int, measured: int = 0) -> None:
    """One run: prints ``select insert total wall`` (µs a new key: CPU, and wall time of
    ``entries_for``), over the ``measured`` keys made after ``keys`` (0: over all of them)."""
    from journey.crypto.keys import KeyWrap, SQLiteKeyStore, Subject

    with tempfile.TemporaryDirectory() as work:
        path = f"{work}/keys.sqlite"
        con = sqlite3.connect(path)
        con.executescript(f"PRAGMA page_size={page_size}; {_SCHEMA};")
        con.close()
        store = SQLiteKeyStore(path, KeyWrap(b"m" * 32))
        spent = {"_select": 0.0, "_insert": 0.0}
        for name in spent:
            def timed(*args, _call=getattr(store, name), _name=name):  # noqa: ANN001, ANN002, ANN202
                started = time.process_time()
                try:
                    return _call(*args)
                finally:
                    spent[_name] += time.process_time() - started
            setattr(store, name, timed)
        made = 0
        total = wall = 0.0
        while made < keys + measured:
            if made == keys and measured:  # filled: measure only the keys made after
                total = wall = 0.0
                for name in spent:
                    spent[name] = 0.0
            size = min(_FILL, keys - made) if measured and made < keys else new  # fill, then ``new``s
            subjects = [Subject(hashlib.sha256(b"%d" % i).hexdigest()[:24], "phone", f"+7916{i:07d}")
                        for i in range(made, made + size)]
            started, clock = time.process_time(), time.perf_counter()
            store.entries_for(subjects)
            total += time.process_time() - started
            wall += time.perf_counter() - clock
            made += size
        count = measured or made
        store.close()
        print(f"{1e6 * spent['_select'] / count:.1f} {1e6 * spent['_insert'] / count:.1f} {1e6 * total / count:.1f} "
              f"{1e6 * wall / count:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=250_000)
    parser.add_argument("--new", type=int, default=2900)
    parser.add_argument("--timed", type=int, default=0, help="measure only this many keys made after --keys")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--variants", default="4096,16384,32768")
    parser.add_argument("--child", type=int)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.keys, args.new, args.timed)
        return
    results: dict[int, list[list[float]]] = {int(v): [] for v in args.variants.split(",")}
    for _ in range(args.runs):
        for page_size in results:
            command = [sys.executable, __file__, "--child", str(page_size), "--keys", str(args.keys),
                       "--new", str(args.new), "--timed", str(args.timed)]
            out = subprocess.run(command, check=True, capture_output=True, text=True, env=os.environ)
            results[page_size].append([float(x) for x in out.stdout.split()])
    measured = (f"{args.timed:,} keys made after {args.keys:,}" if args.timed else f"{args.keys:,} keys")
    print(f"{measured}, {args.new:,} new a batch, {args.runs} runs alternated; µs a new key, median [runs]")
    print("| page size | lookup CPU | insert CPU | entries_for CPU | entries_for wall |")
    print("|---|---|---|---|---|")
    for page_size, runs in results.items():
        cells = [f"{statistics.median(column):.1f} [{', '.join(f'{x:.1f}' for x in column)}]"
                 for column in zip(*runs)]
        print(f"| {page_size:,} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
