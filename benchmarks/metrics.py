"""Benchmark: ``exe.log_metric`` against appending the same values to a file, on the embedded backend.

Run by hand: ``uv run python benchmarks/metrics.py [calls] [rounds]`` (default 100,000 calls, 5 rounds).
Each round, interleaved so all see the same machine load, times ``calls`` values (name ``loss``, a float,
the step) written by:

- ``baseline``: a buffered text file, one ``f.write`` of a CSV line per value (what a script without
  metrics support would do; not durable against a kill until the buffer is flushed);
- ``floor``: one unbuffered ``os.write`` of the same line per value (the cost of "in the OS at once");
- ``log_metric``: ``exe.log_metric("loss", value, step=i)`` on a running execution (validation, the time,
  one JSON line, one ``os.write``).

``overhead`` is ``log_metric - baseline`` (the issue's figure: well under a second for 100,000 calls).
Then the upload of those values (snapshot + one summary batch) and reading them back are timed once.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from deriva_ml import DerivaML
from deriva_ml.execution import ExecutionConfiguration
from deriva_ml.testing import make_workflow


def baseline(path: Path, n: int) -> float:
    t0 = time.perf_counter()
    with open(path, "a") as f:
        for i in range(n):
            f.write(f"loss,{1.0 / (i + 1)!r},{i}\n")
    return time.perf_counter() - t0


def floor(path: Path, n: int) -> float:
    t0 = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        for i in range(n):
            os.write(fd, f"loss,{1.0 / (i + 1)!r},{i}\n".encode())
    finally:
        os.close(fd)
    return time.perf_counter() - t0


def ours(exe, n: int) -> float:
    log = exe.log_metric
    t0 = time.perf_counter()
    for i in range(n):
        log("loss", 1.0 / (i + 1), step=i)
    return time.perf_counter() - t0


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ml = DerivaML("local", "bench", home=root / "home")
        times: dict[str, list[float]] = {"baseline": [], "floor": [], "log_metric": []}
        exes = []
        for r in range(rounds):
            exe = ml.create_execution(ExecutionConfiguration(workflow=make_workflow(), description=f"round {r}"))
            exe.execution_start()
            exes.append(exe)
            times["baseline"].append(baseline(root / f"base{r}.csv", n))
            times["floor"].append(floor(root / f"floor{r}.csv", n))
            times["log_metric"].append(ours(exe, n))
            exe.execution_stop()
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{n:,} values, median of {rounds} interleaved rounds (s):")
        for k in ("baseline", "floor", "log_metric"):
            print(f"  {k:11} {med[k]:.3f}  ({med[k] / n * 1e6:.2f} µs/value, {med[k] / med['baseline']:.1f}x baseline)")
        print(f"  overhead    {med['log_metric'] - med['baseline']:.3f} s for {n:,} calls over the baseline")
        exe = exes[-1]
        t0 = time.perf_counter()
        exe.upload_execution_outputs(progress=False)
        up = time.perf_counter() - t0
        t0 = time.perf_counter()
        series = ml.list_metrics(exe.execution_rid)
        rd = time.perf_counter() - t0
        t0 = time.perf_counter()
        ml.metric_summary(exe.execution_rid)
        sm = time.perf_counter() - t0
        assert len(series) == n
        print(f"  upload of {n:,} values (snapshot + summary rows + asset): {up:.3f} s")
        print(f"  list_metrics (read back {n:,}): {rd:.3f} s; metric_summary (summary table): {sm * 1000:.1f} ms")
        ml.close()


if __name__ == "__main__":
    main()
