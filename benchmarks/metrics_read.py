"""Benchmark: reading an execution's metric values back (``ml.list_metrics``) on the embedded backend.

Run by hand: ``uv run python benchmarks/metrics_read.py [values] [rounds]`` (default 100,000 values, 5 rounds).
One execution logs ``values`` values (``loss`` and ``acc`` alternately, with steps) and uploads them; then
each round times ``ml.list_metrics`` (the uploaded ``metrics.jsonl`` is in the local object cache after the
first read, so the figure is the decoding and the records, not the transfer) and ``parse_series`` of the
same bytes alone. Prints the median of the rounds.

To compare two versions in one session, run the script against each tree in turn, e.g.
``PYTHONPATH=/tmp/before uv run python benchmarks/metrics_read.py`` for a copy of the older tree
(``git archive REV | tar -x -C /tmp/before``); the first line printed names the package that ran.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import deriva_ml
from deriva_ml import DerivaML
from deriva_ml.execution import ExecutionConfiguration
from deriva_ml.execution._metrics import parse_series
from deriva_ml.testing import make_workflow


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    print(f"package: {Path(deriva_ml.__file__).parent}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ml = DerivaML("local", "bench", home=root / "home")
        exe = ml.create_execution(ExecutionConfiguration(workflow=make_workflow(), description="read"))
        exe.execution_start()
        for i in range(n // 2):
            exe.log_metrics({"loss": 1.0 / (i + 1), "acc": i / n}, step=i)
        exe.execution_stop()
        exe.upload_execution_outputs(progress=False)
        rid = exe.execution_rid
        data = (exe.working_dir / "metrics" / "metrics.jsonl").read_bytes()
        assert len(ml.list_metrics(rid)) == n  # also fills the object cache
        times: dict[str, list[tuple[float, float]]] = {"list_metrics": [], "parse_series alone": []}
        for _ in range(rounds):
            for label, call in (
                ("list_metrics", lambda: ml.list_metrics(rid)),
                ("parse_series alone", lambda: parse_series(data)),
            ):
                w0, c0 = time.perf_counter(), time.process_time()
                assert len(call()) == n
                times[label].append((time.perf_counter() - w0, time.process_time() - c0))
        print(f"{n:,} values, median of {rounds} rounds: wall s / CPU s of this process (CPU is steadier under load)")
        for label, pairs in times.items():
            wall = statistics.median(w for w, _ in pairs)
            cpu = statistics.median(c for _, c in pairs)
            print(f"  {label:19} {wall:.3f} / {cpu:.3f}")
        ml.close()


if __name__ == "__main__":
    main()
