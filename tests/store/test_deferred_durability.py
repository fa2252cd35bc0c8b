"""The local store's deferred durability: atomic puts now, one sync for the lot later."""

from __future__ import annotations

import os
from pathlib import Path

from deriva_ml.store._files import PendingSync
from deriva_ml.store.local import LocalObjectStore
from deriva_ml.store.port import DeferredDurability, SyncingStore


def _files(tmp_path: Path, n: int) -> list[Path]:
    src = tmp_path / "src"
    src.mkdir()
    out = []
    for i in range(n):
        p = src / f"f{i}.bin"
        p.write_bytes(i.to_bytes(2, "big") * 10)
        out.append(p)
    return out


def test_a_deferred_view_records_what_it_wrote_and_sync_makes_it_durable(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "store")
    assert isinstance(store, DeferredDurability)
    view = store.deferred()
    assert isinstance(view, SyncingStore)
    objs = [view.put(p, table="T", filename=p.name) for p in _files(tmp_path, 5)]
    assert view._pending is not None and len(view._pending) > 0  # fsyncs owed
    assert store._pending is None  # the store itself is not deferred
    assert all(store.stat(o.url) == o for o in objs)  # visible at once (atomic renames happened)
    assert view.sync() >= 1
    assert len(view._pending) == 0
    assert view.sync() == 0  # nothing left to do
    assert store.sync() == 0  # a plain store's puts are durable on return


def test_the_portable_fallback_fsyncs_each_file_and_each_directory_once(tmp_path: Path) -> None:
    pending = PendingSync()
    d = tmp_path / "d"
    d.mkdir()
    files = []
    for i in range(3):
        f = d / f"{i}"
        f.write_bytes(b"x")
        files.append(f)
    pending.add(files=files, dirs=[d, d, tmp_path])
    pending.add(files=[d / "gone"])  # replaced by a rename since: skipped, not an error
    assert pending.flush(tmp_path, syncfs=False) == 4 + 2
    assert len(pending) == 0


def test_a_truncated_blob_is_not_reported_stored(tmp_path: Path) -> None:
    """After a crash before the sync, a blob may be short; stat() then says missing and put stores it again."""
    store = LocalObjectStore(tmp_path / "store")
    (p,) = _files(tmp_path, 1)
    obj = store.put(p, table="T", filename=p.name)
    blob = store.path_of(obj.url)
    assert blob is not None
    os.chmod(blob, 0o644)
    blob.write_bytes(b"")
    assert store.stat(obj.url) is None
    again = store.put(p, table="T", filename=p.name, md5=obj.md5)
    assert again == obj and blob.read_bytes() == p.read_bytes()
