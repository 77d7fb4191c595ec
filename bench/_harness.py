"""What every benchmark here shares: each measurement in its own process (so peak
memory is its own), runs interleaved with the peer, medians and ratios printed."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

Result = dict[str, float]


def work_dir() -> Path:
    """Where inputs are generated and kept between runs (BENCH_DIR, default bench/out)."""
    work = Path(os.environ.get("BENCH_DIR", "bench/out"))
    work.mkdir(parents=True, exist_ok=True)
    return work


def measure(script: str, kind: str, *arguments: str) -> Result:
    """Run ``script --child kind arguments...`` and read the JSON it prints last."""
    out = subprocess.run([sys.executable, script, "--child", kind, *arguments],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def prefer_code(directory: str) -> None:
    """Import ``journey`` from ``directory`` (a worktree of an earlier commit: the "before"
    peer) instead of the editable install; call before the first ``import journey``."""
    path = os.environ.get("PYTHONPATH", "")
    if path.split(os.pathsep)[0] != directory or os.environ.get("PYTHONSAFEPATH") != "1":
        # Worker processes start from a fork server, an interpreter run with ``-c``: it
        # does not take this sys.path and puts the working directory first. Run again
        # with the directory first on PYTHONPATH and no working directory on the path
        # (PYTHONSAFEPATH), which every process of the measurement inherits. Before,
        # the "before" ingest's workers ran the checkout the benchmark was started in.
        here = os.path.dirname(os.path.abspath(sys.argv[0]))  # this script's imports
        os.execve(sys.executable, [sys.executable, *sys.argv], {
            **os.environ, "PYTHONSAFEPATH": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, (directory, here, path)))})
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
    sys.path.insert(0, directory)


def interleave(runs: int, kinds: dict[str, Callable[[str], Result]], work: Path) -> dict[str, list[Result]]:
    """``runs`` rounds; in each, every kind measured once, in a fresh temporary directory."""
    results: dict[str, list[Result]] = {name: [] for name in kinds}
    for _ in range(runs):
        for name, run in kinds.items():
            with tempfile.TemporaryDirectory(dir=work) as tmp:
                results[name].append(run(tmp))
    return results


def report(results: dict[str, list[Result]], floor: str, unit: str) -> dict[str, float]:
    """Print medians, peak memory and the ratio to ``floor``; return the medians."""
    rates = {name: statistics.median(r["rate"] for r in runs) for name, runs in results.items()}
    print(f"{'':24} {unit:>12} {'peak MiB':>9} {'of floor':>9}  runs")
    for name, runs in results.items():
        listed = ", ".join(f"{r['rate']:,.0f}" for r in runs)
        peak = max(r["peak_mib"] for r in runs)
        print(f"{name:24} {rates[name]:>12,.0f} {peak:>9,.0f} {rates[name] / rates[floor]:>8.0%}  [{listed}]")
    return rates


def emit(result: Result, count: str, peak_kib: float | None = None) -> None:
    """In a child: add the rate and peak memory (max RSS unless given) and print the JSON."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result["peak_mib"] = max(own, peak_kib or 0) / 1024
    result["rate"] = result[count] / result["seconds"]
    print(json.dumps(result))


def arguments(touches: int, child: Callable[..., None]) -> argparse.Namespace | None:
    """``--touches``, ``--runs``, and ``--child KIND A B`` (which runs ``child`` and
    returns None): the command line every benchmark here takes."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--touches", type=int, default=touches)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs=3)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return None
    return args
