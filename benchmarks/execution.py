"""Benchmark: end-to-end executions on the embedded catalog, and uploading 1,000 small outputs.

Run by hand: ``uv run python benchmarks/execution.py [runs]``. Every figure is printed next to a
"before" measured in the same run, interleaved with it so both see the same machine load:

- executions/s (10 outputs each): ``before`` re-reads every installed distribution's metadata through
  the email parser and re-scrubs ``uv.lock`` on each execution (the code before issue 13.10);
  ``after`` is the library as it is;
- manifest commits (``--manifest``): the library as it is, then the proposed grouping (``seal_outputs``,
  ``_persist_record`` and ``_set_status`` each inside one ``Manifest.batch()``: one commit instead of one per
  seal/state; the callers live in ``execution/_execution.py``), and for reference the same loop with the
  manifest at ``synchronous=NORMAL`` and ``OFF`` (the most any manifest change could save);
- 1,000 small outputs: ``before`` is a local store that fsyncs every write and a manifest row committed
  per file (the eager path, still used for stores without deferred durability); ``after`` defers the
  fsyncs to one sync per group before the manifest records it. Both are divided by the baseline
  "write + MD5 + copy" of the same files (the work no implementation can avoid), measured each time.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import statistics
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from deriva_ml import DerivaML
from deriva_ml.core.redact import redact_urls
from deriva_ml.execution import ExecutionConfiguration, _environment
from deriva_ml.store.local import LocalObjectStore
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


class EagerLocalStore(LocalObjectStore):
    """The local store without deferred durability: an fsync per write, a manifest commit per file."""

    deferred = None  # type: ignore[assignment]  # not a DeferredDurability: the eager path


def legacy_packages():
    """The package list as computed before: the full email parse of every distribution, every time."""
    return sorted(
        {(d.metadata["Name"] or "?", d.version) for d in metadata.distributions() if d.metadata["Name"]},
        key=lambda p: p[0].lower(),
    )


def legacy_lock(path: Path) -> str:
    return redact_urls(Path(path).read_text(encoding="utf-8"))


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


def one_execution(ml: DerivaML, wf, r: int) -> float:
    t = time.perf_counter()
    with ml.create_execution(ExecutionConfiguration(workflow=wf, description=f"run {r}")) as exe:
        for i in range(10):
            exe.asset_file_path("Model", f"out{i}.bin").write_bytes(bytes([i]) * 1024)
    exe.upload_execution_outputs()
    return time.perf_counter() - t


def upload_1000(ml: DerivaML, wf, tag: str) -> float:
    with ml.create_execution(ExecutionConfiguration(workflow=wf, description=f"1000 outputs {tag}")) as exe:
        for i in range(1000):
            exe.asset_file_path("Model", f"{tag}{i:04d}.bin").write_bytes(i.to_bytes(4, "big") * 256)
    t = time.perf_counter()
    exe.upload_execution_outputs()
    return time.perf_counter() - t


_GROUPED = ("seal_outputs", "_persist_record", "_set_status")


def _grouped(method):
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self._manifest.batch():
            return method(self, *args, **kwargs)

    return run


def manifest_modes(runs: int) -> None:
    """Executions/s with the manifest's commits as they are, grouped, and (reference) less durable."""
    from deriva_ml.execution import _manifest
    from deriva_ml.execution._execution import Execution

    originals = {name: getattr(Execution, name) for name in _GROUPED}
    manifest_init = _manifest.Manifest.__init__
    commits = [0]
    txn = _manifest.Manifest._txn

    def counting_txn(self):
        if not self._depth:
            commits[0] += 1
        return txn(self)

    _manifest.Manifest._txn = counting_txn
    modes = {
        "as is": ("FULL", False),
        "grouped (proposed)": ("FULL", True),
        "NORMAL": ("NORMAL", False),
        "OFF": ("OFF", False),
    }
    state = {"sync": "FULL"}

    def init(self, path):
        manifest_init(self, path)
        self._db.execute(f"PRAGMA synchronous={state['sync']}")

    _manifest.Manifest.__init__ = init
    with tempfile.TemporaryDirectory() as tmp:
        ml = DerivaML("local", "bench", home=Path(tmp) / "home")
        add_domain_schema(ml)
        wf = make_workflow("bench")
        one_execution(ml, wf, -1)
        times: dict[str, list[float]] = {m: [] for m in modes}
        per_run: dict[str, int] = {}
        for r in range(runs):
            for mode, (sync, grouped) in modes.items():
                state["sync"] = sync
                for name, method in originals.items():
                    setattr(Execution, name, _grouped(method) if grouped else method)
                commits[0] = 0
                times[mode].append(one_execution(ml, wf, r))
                per_run[mode] = commits[0]
        ml.close()
    for name, method in originals.items():
        setattr(Execution, name, method)
    _manifest.Manifest.__init__, _manifest.Manifest._txn = manifest_init, txn
    print(f"manifest commits, end-to-end execution (10 outputs), median of {runs}, same run:")
    for mode, ts in times.items():
        m = statistics.median(ts)
        print(f"  {mode:20s} {m * 1000:6.1f} ms -> {1 / m:5.1f} executions/s, {per_run[mode]} manifest commits")


def main() -> None:
    if "--manifest" in sys.argv:
        args = [a for a in sys.argv[1:] if a != "--manifest"]
        manifest_modes(int(args[0]) if args else 15)
        return
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    fast_packages, fast_lock = _environment.installed_packages, _environment.redacted_lock_text
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ml = DerivaML("local", "bench", home=root / "home")
        add_domain_schema(ml)
        counting = Counting(ml.catalog)
        ml.catalog = counting
        wf = make_workflow("bench")
        one_execution(ml, wf, -1)  # warm-up: imports, first package read
        before: list[float] = []
        after: list[float] = []
        requests = []
        for r in range(runs):  # interleaved: both modes see the same load
            _environment.installed_packages = legacy_packages  # type: ignore[assignment]
            _environment.redacted_lock_text = legacy_lock
            before.append(one_execution(ml, wf, 2 * r))
            _environment.installed_packages, _environment.redacted_lock_text = fast_packages, fast_lock
            counting.count = 0
            after.append(one_execution(ml, wf, 2 * r + 1))
            requests.append(counting.count)
        base = [baseline(root / f"b{r}", 14, 1024) for r in range(5)]  # 10 outputs + 4 metadata files
        mb, ma = statistics.median(before), statistics.median(after)
        print(f"end-to-end execution (10 outputs), median of {runs}, same run:")
        print(f"  before: {mb * 1000:6.1f} ms -> {1 / mb:5.1f} executions/s")
        print(f"  after:  {ma * 1000:6.1f} ms -> {1 / ma:5.1f} executions/s  ({mb / ma:.1f}x faster)")
        print(f"  catalog requests per execution: {statistics.median(requests):.0f}")
        print(f"  baseline (write+md5+copy of the same 14 files): {statistics.median(base) * 1000:.2f} ms")

        deferred_store = ml.store
        assert isinstance(deferred_store, LocalObjectStore)
        eager_store = EagerLocalStore(deferred_store.root)
        eager: list[float] = []
        fast: list[float] = []
        bases: list[float] = []
        for rep in range(3):
            bases.append(baseline(root / f"b1000-{rep}a", 1000, 1024))
            ml.store = eager_store
            counting.count = 0
            eager.append(upload_1000(ml, wf, f"e{rep}"))
            ml.store = deferred_store
            counting.count = 0
            fast.append(upload_1000(ml, wf, f"d{rep}"))
            bases.append(baseline(root / f"b1000-{rep}b", 1000, 1024))
        b, e, f = statistics.median(bases), statistics.median(eager), statistics.median(fast)
        print("upload of 1,000 small outputs (1 KiB each), median of 3, same run:")
        print(f"  baseline (write+md5+copy of 1,000 files): {b:.3f} s")
        print(f"  before (fsync per write, manifest commit per file): {e:.3f} s = {e / b:.1f}x baseline")
        print(f"  after  (one sync per group before it is recorded):  {f:.3f} s = {f / b:.1f}x baseline")
        print(f"  catalog requests (after): {counting.count}")
        ml.close()


if __name__ == "__main__":
    main()
