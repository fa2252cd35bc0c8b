"""Benchmark: end-to-end executions on the embedded catalog, and uploading 1,000 small outputs.

Run by hand: ``uv run python benchmarks/execution.py [--rounds N] [--per-round K] [--base REV]``.

- executions/s (10 outputs of 1 KiB each, issue 13 asks for 50/s): the library of this tree ("after")
  and the one of git revision ``--base`` (default ``main``: ``git archive`` of its ``deriva_ml/`` into a
  temporary directory, "before") each run in a child process of their own (own home, embedded catalog,
  local store, one warm-up execution), alternately for ``--rounds`` rounds of ``--per-round`` executions,
  so both see the same machine load. Printed: the median ms per execution and executions/s of each, their
  ratio, and the manifest commits, manifest fsyncs (``synchronous=FULL`` commits and explicit fsyncs)
  and catalog port calls per execution;
- ``--upload``: 1,000 small outputs: ``before`` is a local store that fsyncs every write and a manifest
  row committed per file (the eager path, still used for stores without deferred durability); ``after``
  defers the fsyncs to one sync per group before the manifest records it. Both are divided by the
  baseline "write + MD5 + copy" of the same files (the work no implementation can avoid), measured each time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The child: ``python -c CHILD <home> <executions>`` prints one JSON line per execution
#: (seconds, manifest commits, catalog calls), after one untimed warm-up execution.
CHILD = r"""
import json, sys, time
from pathlib import Path
from deriva_ml import DerivaML
from deriva_ml.execution import ExecutionConfiguration, _manifest
from deriva_ml.testing import add_domain_schema, make_workflow
import deriva_ml

print("#", deriva_ml.__file__, flush=True)
commits = [0]
txn = _manifest.Manifest._txn
def counting_txn(self, *a, **k):
    if not self._depth:
        commits[0] += 1
    return txn(self, *a, **k)
_manifest.Manifest._txn = counting_txn

class Counting:
    def __init__(self, inner):
        self.inner, self.count = inner, 0
    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if name in ("apply", "query", "resolve_rid", "snapshot"):
            def wrapped(*a, **k):
                self.count += 1
                return attr(*a, **k)
            return wrapped
        return attr

ml = DerivaML("local", "bench", home=Path(sys.argv[1]))
add_domain_schema(ml)
counting = Counting(ml.catalog)
ml.catalog = counting
wf = make_workflow("bench")

def one(r):
    with ml.create_execution(ExecutionConfiguration(workflow=wf, description=f"run {r}")) as exe:
        for i in range(10):
            exe.asset_file_path("Model", f"out{i}.bin").write_bytes(bytes([i]) * 1024)
    exe.upload_execution_outputs()

one(-1)
for r in range(int(sys.argv[2])):
    commits[0] = counting.count = 0
    t = time.perf_counter()
    one(r)
    dt = time.perf_counter() - t
    print(json.dumps({"s": dt, "commits": commits[0], "calls": counting.count}), flush=True)
ml.close()
"""


def extract(rev: str, dest: Path) -> Path:
    """``deriva_ml/`` of git revision ``rev`` unpacked under ``dest`` (a directory to put on PYTHONPATH)."""
    dest.mkdir(parents=True)
    archive = dest / "src.tar"
    with archive.open("wb") as f:
        subprocess.run(["git", "archive", rev, "deriva_ml"], cwd=ROOT, stdout=f, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest


def run_child(src: Path, home: Path, n: int) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(src), "DERIVA_ML_PROGRESS": "0"}
    out = subprocess.run(
        [sys.executable, "-P", "-c", CHILD, str(home), str(n)], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if out.returncode:
        raise SystemExit(f"benchmark child ({src}) failed:\n{out.stderr[-3000:]}")
    loaded = next(line[2:] for line in out.stdout.splitlines() if line.startswith("# "))
    if not Path(loaded).is_relative_to(src):  # the library measured must be the one asked for
        raise SystemExit(f"benchmark child ran {loaded}, not the library under {src}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def compare(base: str, rounds: int, per_round: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sources = {f"before ({base})": extract(base, root / "before"), "after (this tree)": ROOT}
        results: dict[str, list[dict]] = {name: [] for name in sources}
        for r in range(rounds):  # interleaved: both see the same load
            for name, src in sources.items():
                results[name] += run_child(src, root / f"home-{r}-{len(results[name])}-{name[:5]}", per_round)
        load = os.getloadavg()
    print(f"end-to-end execution (10 outputs of 1 KiB), {rounds} rounds x {per_round}, same run, interleaved;")
    print(f"load average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs")
    medians = {}
    for name, rows in results.items():
        m = medians[name] = statistics.median(r["s"] for r in rows)
        best = min(r["s"] for r in rows)
        commits = statistics.median(r["commits"] for r in rows)
        calls = statistics.median(r["calls"] for r in rows)
        print(
            f"  {name:24s} median {m * 1000:6.1f} ms -> {1 / m:5.1f}/s  (best {best * 1000:5.1f} ms -> "
            f"{1 / best:5.1f}/s)  manifest commits {commits:.0f}  catalog calls {calls:.0f}"
        )
    before, after = medians.values()
    print(f"  after is {before / after:.2f}x faster (median)")


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


def upload_1000() -> None:
    from deriva_ml import DerivaML
    from deriva_ml.execution import ExecutionConfiguration
    from deriva_ml.store.local import LocalObjectStore
    from deriva_ml.testing import add_domain_schema, make_workflow

    class EagerLocalStore(LocalObjectStore):
        """The local store without deferred durability: an fsync per write, a manifest commit per file."""

        deferred = None  # type: ignore[assignment]  # not a DeferredDurability: the eager path

    def one(ml: DerivaML, wf, tag: str) -> float:
        with ml.create_execution(ExecutionConfiguration(workflow=wf, description=f"1000 outputs {tag}")) as exe:
            for i in range(1000):
                exe.asset_file_path("Model", f"{tag}{i:04d}.bin").write_bytes(i.to_bytes(4, "big") * 256)
        t = time.perf_counter()
        exe.upload_execution_outputs()
        return time.perf_counter() - t

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ml = DerivaML("local", "bench", home=root / "home")
        add_domain_schema(ml)
        wf = make_workflow("bench")
        deferred_store = ml.store
        assert isinstance(deferred_store, LocalObjectStore)
        eager_store = EagerLocalStore(deferred_store.root)
        eager: list[float] = []
        fast: list[float] = []
        bases: list[float] = []
        for rep in range(3):
            bases.append(baseline(root / f"b1000-{rep}a", 1000, 1024))
            ml.store = eager_store
            eager.append(one(ml, wf, f"e{rep}"))
            ml.store = deferred_store
            fast.append(one(ml, wf, f"d{rep}"))
            bases.append(baseline(root / f"b1000-{rep}b", 1000, 1024))
        ml.close()
    b, e, f = statistics.median(bases), statistics.median(eager), statistics.median(fast)
    print("upload of 1,000 small outputs (1 KiB each), median of 3, same run:")
    print(f"  baseline (write+md5+copy of 1,000 files): {b:.3f} s")
    print(f"  before (fsync per write, manifest commit per file): {e:.3f} s = {e / b:.1f}x baseline")
    print(f"  after  (one sync per group before it is recorded):  {f:.3f} s = {f / b:.1f}x baseline")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--per-round", type=int, default=5)
    parser.add_argument("--base", default="main", help="git revision measured as 'before'")
    parser.add_argument("--upload", action="store_true", help="the 1,000 small outputs figure instead")
    args = parser.parse_args()
    if args.upload:
        upload_1000()
    else:
        compare(args.base, args.rounds, args.per_round)


if __name__ == "__main__":
    main()
