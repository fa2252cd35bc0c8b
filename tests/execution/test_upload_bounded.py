"""Upload memory and durability: a bounded window of in-flight puts; objects synced before they are recorded.

The store is a real :class:`LocalObjectStore` subclass that counts (the store is a port; the code under
test, ``Execution._upload``, runs unchanged) on the embedded catalog.
"""

from __future__ import annotations

import gc
import sqlite3
import threading
import time
from concurrent.futures import Future
from pathlib import Path

from deriva_ml import DerivaML
from deriva_ml.execution import ExecutionConfiguration
from deriva_ml.store.local import LocalObjectStore
from deriva_ml.store.port import DeferredDurability
from deriva_ml.testing import add_domain_schema, make_workflow


class Tally:
    """Shared by the store and its deferred views (``deferred()`` copies the store object)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.submitted_ahead = 0
        self.unsynced: set[str] = set()
        self.syncs = 0
        self.recorded_before_sync: list[str] = []
        self.manifest: Path | None = None
        self.puts = 0
        self.max_futures = 0


class CountingLocalStore(LocalObjectStore):
    def __init__(self, root: Path, tally: Tally) -> None:
        super().__init__(root)
        self.tally = tally

    def put(self, path, **kw):  # type: ignore[no-untyped-def]
        t = self.tally
        with t.lock:
            t.in_flight += 1
            t.max_in_flight = max(t.max_in_flight, t.in_flight)
            t.puts += 1
            look = 20 <= t.puts < 25  # by then an unbounded submitter has queued every output
        if look:  # futures submitted and not finished right now (queued or running): finished ones left
            # uncollected by earlier code, in this test or in others of the same process, do not count
            live = sum(1 for o in gc.get_objects() if isinstance(o, Future) and not o.done())
            with t.lock:
                t.max_futures = max(t.max_futures, live)
        try:
            time.sleep(0.001)  # let the submitting thread run ahead if nothing bounds it
            obj = super().put(path, **kw)
        finally:
            with t.lock:
                t.in_flight -= 1
        with t.lock:
            t.unsynced.add(obj.url)
        return obj

    def sync(self) -> int:
        t = self.tally
        if t.manifest is not None and t.unsynced:  # nothing unsynced may be recorded as stored yet
            with sqlite3.connect(f"file:{t.manifest}?mode=ro", uri=True) as db:
                stored = {r[0] for r in db.execute("SELECT url FROM entry WHERE url IS NOT NULL")}
            t.recorded_before_sync.extend(sorted(stored & t.unsynced))
        n = super().sync()
        with t.lock:
            t.syncs += 1
            t.unsynced.clear()
        return n


def _run(tmp_path: Path, n: int, workers: int) -> tuple[Tally, DerivaML, list[dict]]:
    ml = DerivaML("local", "t", home=tmp_path / "home", upload_workers=workers)
    add_domain_schema(ml)
    tally = Tally()
    assert isinstance(ml.store, LocalObjectStore)
    ml.store = CountingLocalStore(ml.store.root, tally)
    with ml.create_execution(ExecutionConfiguration(workflow=make_workflow("w"), description="many")) as exe:
        for i in range(n):
            exe.asset_file_path("Model", f"m{i:04d}.bin").write_bytes(i.to_bytes(4, "big") * 8)
    tally.manifest = exe.working_dir / "manifest.sqlite"
    tally.unsynced.clear()
    tally.syncs = 0
    exe.upload_execution_outputs()
    rows = ml.catalog.query(ml.domain_schema, "Model", {}, columns=["URL", "Filename"])
    return tally, ml, list(rows)


def test_in_flight_uploads_are_bounded_by_a_window_not_by_the_output_count(tmp_path: Path, monkeypatch) -> None:
    from deriva_ml.execution import _upload
    from deriva_ml.execution._upload import _WINDOW_PER_WORKER

    # small outputs to the local store are copied in the calling thread: here the pool is what is measured
    monkeypatch.setattr(_upload, "_INLINE_BYTES", 0)
    tally, ml, rows = _run(tmp_path, 120, workers=2)
    assert len(rows) == 120
    assert tally.max_in_flight <= 2  # never more puts running than workers
    # submitted-but-unfinished uploads: one window (plus a few Futures of other code), not 120; an unbounded
    # submitter has all 120 queued by the 20th put
    assert _WINDOW_PER_WORKER <= 4  # a window of a few uploads per worker, whatever the number of outputs
    assert 1 <= tally.max_futures <= 2 * 4 + 4, tally.max_futures
    ml.close()


def test_the_submission_window_is_bounded(tmp_path: Path) -> None:
    """Futures in the pool's queue at once: at most workers x window, not one per output."""
    from concurrent.futures import ThreadPoolExecutor

    from deriva_ml.execution._upload import _bounded

    held = threading.Event()
    peak = 0
    queued = 0
    lock = threading.Lock()

    def work(i: int) -> int:
        nonlocal queued
        held.wait(5)
        with lock:
            queued -= 1
        return i

    class Counting(ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def, override]
            nonlocal queued, peak
            with lock:
                queued += 1
                peak = max(peak, queued)
            return super().submit(fn, *args, **kwargs)

    with Counting(max_workers=2) as pool:
        threading.Timer(0.05, held.set).start()
        done = sorted(f.result() for f in _bounded(pool, work, range(500), window=4))
    assert done == list(range(500))
    assert peak <= 4


def test_objects_are_synced_before_the_manifest_records_them(tmp_path: Path) -> None:
    tally, ml, rows = _run(tmp_path, 40, workers=3)
    assert isinstance(ml.store, DeferredDurability)
    assert tally.syncs >= 1
    assert tally.recorded_before_sync == []  # the manifest named no object before it was synced
    assert not tally.unsynced  # everything put was synced by the end
    assert {r["Filename"] for r in rows} == {f"m{i:04d}.bin" for i in range(40)}
    # every row's object is readable through a plain (non-deferred) view of the same directory
    plain = LocalObjectStore(ml.store.root)
    assert all(plain.stat(r["URL"]) is not None for r in rows)
    ml.close()
