"""Benchmark: end-to-end executions on the embedded catalog, and uploading 1,000 small outputs.

Run by hand: ``uv run python benchmarks/execution.py``. Prints absolute figures, catalog request counts
and ratios against a baseline measured in the same run (writing + MD5-hashing + copying the same files,
the work no implementation can avoid).
"""

from __future__ import annotations

import hashlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from deriva_ml import DerivaML
from deriva_ml.execution import ExecutionConfiguration
from deriva_ml.testing import add_domain_schema, make_workflow


class Counting:
    """Counts catalog port calls (each is one request on a live server)."""

    def __init__(self, inner):
        self.inner = inner
        self.count = 0

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if name in ("apply", "query", "resolve_rid", "snapshot"):

            def wrapped(*a, **k):
                self.count += 1
                return attr(*a, **k)

            return wrapped
        return attr


def baseline(root: Path, n_files: int, size: int) -> float:
    src = root / "src"
    dst = root / "dst"
    src.mkdir(parents=True)
    dst.mkdir(parents=True)
    t = time.perf_counter()
    for i in range(n_files):
        p = src / f"f{i}.bin"
        p.write_bytes(bytes([i % 256]) * size)
        hashlib.md5(p.read_bytes()).hexdigest()
        shutil.copyfile(p, dst / p.name)
    return time.perf_counter() - t


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ml = DerivaML("local", "bench", home=root / "home")
        add_domain_schema(ml)
        counting = Counting(ml.catalog)
        ml.catalog = counting
        wf = make_workflow("bench")
        times = []
        requests = []
        for r in range(runs):
            counting.count = 0
            t = time.perf_counter()
            with ml.create_execution(ExecutionConfiguration(workflow=wf, description=f"run {r}")) as exe:
                for i in range(10):
                    exe.asset_file_path("Model", f"out{i}.bin").write_bytes(bytes([i]) * 1024)
            exe.upload_execution_outputs()
            times.append(time.perf_counter() - t)
            requests.append(counting.count)
        base = [baseline(root / f"b{r}", 14, 1024) for r in range(5)]  # 10 outputs + 4 metadata files
        med = statistics.median(times)
        print(f"end-to-end execution (10 outputs): median {med * 1000:.1f} ms -> {1 / med:.1f} executions/s")
        print(f"  catalog requests per execution: {statistics.median(requests):.0f}")
        print(f"  baseline (write+md5+copy of the same 14 files): {statistics.median(base) * 1000:.2f} ms")

        counting.count = 0
        with ml.create_execution(ExecutionConfiguration(workflow=wf, description="1000 outputs")) as exe:
            for i in range(1000):
                exe.asset_file_path("Model", f"big{i:04d}.bin").write_bytes(i.to_bytes(4, "big") * 256)
        counting.count = 0
        t = time.perf_counter()
        exe.upload_execution_outputs()
        up = time.perf_counter() - t
        b = baseline(root / "b1000", 1000, 1024)
        print(f"upload of 1,000 small outputs: {up:.2f} s, catalog requests: {counting.count}")
        print(f"  baseline (write+md5+copy of 1,000 files): {b:.2f} s; ratio {up / b:.1f}x")
        ml.close()


if __name__ == "__main__":
    main()
