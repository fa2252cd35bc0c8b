"""Issue 12.4 / 12.8 / 12.9: the asset cache trusts nothing it reads back.

Index entries pointing outside the cache are dropped and refetched; a corrupt index is rebuilt from the
cached files; locks held by an unrelated process (pid reuse) or holding garbage are broken at once.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from cache_doubles import CountingStore

from deriva_ml._process import owner_identity, owner_is_alive
from deriva_ml.cache import AssetCache, CacheLockTimeout
from deriva_ml.core.errors import DerivaMLException

RID = "1-ABC"


@pytest.fixture
def store(tmp_path: Path) -> CountingStore:
    return CountingStore(tmp_path / "store")


def _entry_json(cache: AssetCache, key: str) -> dict[str, object]:
    raw = cache._index._cache.get(f"entry:{key}")
    assert isinstance(raw, str)
    data: dict[str, object] = json.loads(raw)
    return data


# ---- 12.4: index entries are validated on read ------------------------------------------------------
@pytest.mark.parametrize(
    "bad_path",
    ["../../outside/secret.txt", "/{outside}", "assets/1-XYZ_{md5}/w.pt", "assets/{dir}/../../../outside/secret.txt"],
)
def test_an_index_entry_pointing_elsewhere_is_dropped_and_refetched(
    tmp_path: Path, store: CountingStore, bad_path: str
) -> None:
    outside = tmp_path / "outside" / "secret.txt"
    outside.parent.mkdir()
    outside.write_bytes(b"not the asset")
    obj = store.add(b"the asset", "w.pt")
    key = f"{RID}:{obj.md5}"
    with AssetCache(tmp_path / "cache") as cache:
        good = cache.fetch(RID, obj.md5, "w.pt", obj.url, store)
        record = _entry_json(cache, key)
        st = outside.stat()
        record.update(
            path=bad_path.format(outside=outside, md5=obj.md5, dir=f"{RID}_{obj.md5}"),
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
        )
        cache._index._cache.set(f"entry:{key}", json.dumps(record))
    with AssetCache(tmp_path / "cache") as cache:  # a fresh process: no in-memory memo
        assert cache.lookup(RID, obj.md5) is None
        path = cache.fetch(RID, obj.md5, "w.pt", obj.url, store)
        assert path == good and path.read_bytes() == b"the asset"
        assert len(store.gets) == 2  # refetched
        assert _entry_json(cache, key)["path"] == f"assets/{RID}_{obj.md5}/w.pt"


def test_a_symlink_planted_at_the_cached_path_is_not_followed(tmp_path: Path, store: CountingStore) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_bytes(b"secret")
    obj = store.add(b"the asset", "w.pt")
    with AssetCache(tmp_path / "cache") as cache:
        path = cache.fetch(RID, obj.md5, "w.pt", obj.url, store)
    os.chmod(path, 0o644)
    path.unlink()
    path.symlink_to(outside)
    key = f"{RID}:{obj.md5}"
    with AssetCache(tmp_path / "cache") as cache:
        record = _entry_json(cache, key)
        st = os.stat(path)  # the symlink's target: size/mtime "match"
        record.update(size=st.st_size, mtime_ns=st.st_mtime_ns)
        cache._index._cache.set(f"entry:{key}", json.dumps(record))
        assert cache.lookup(RID, obj.md5) is None
        again = cache.fetch(RID, obj.md5, "w.pt", obj.url, store)
        assert not again.is_symlink() and again.read_bytes() == b"the asset"
    assert outside.read_bytes() == b"secret"


# ---- 12.8: a corrupt index is rebuilt from the cached files -------------------------------------------
def test_a_corrupt_index_is_rebuilt_from_its_files(tmp_path: Path, store: CountingStore) -> None:
    a, b = store.add(b"first", "a.bin"), store.add(b"second", "b.bin")
    with AssetCache(tmp_path / "cache") as cache:
        pa = cache.fetch(RID, a.md5, "a.bin", a.url, store)
        pb = cache.fetch("1-DEF", b.md5, "b.bin", b.url, store)
    os.chmod(pb, 0o644)
    pb.write_bytes(b"bit rot")  # must not come back as a hit
    db = tmp_path / "cache" / "index" / "cache.db"
    db.write_bytes(b"this is not an SQLite database" * 100)
    with AssetCache(tmp_path / "cache") as cache:
        assert cache.lookup(RID, a.md5) == pa  # re-registered from its verified file
        assert cache.fetch(RID, a.md5, "a.bin", a.url, store) == pa
        assert len(store.gets) == 2  # no download for the good file
        assert cache.lookup("1-DEF", b.md5) is None
        assert cache.fetch("1-DEF", b.md5, "b.bin", b.url, store).read_bytes() == b"second"
        assert len(store.gets) == 3
    assert list((tmp_path / "cache").glob("index.corrupt-*"))  # kept aside for inspection


def test_an_unrecoverable_index_names_the_file(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    (cache_dir / "index").mkdir(parents=True)
    (cache_dir / "index" / "cache.db").write_bytes(b"garbage" * 1000)
    os.chmod(cache_dir, 0o555)  # the broken index cannot be moved aside
    try:
        if os.access(cache_dir, os.W_OK):
            pytest.skip("running as root: directory permissions are not enforced")
        with pytest.raises(DerivaMLException, match="cache.db"):
            AssetCache(cache_dir)
    finally:
        os.chmod(cache_dir, 0o755)


# ---- 12.9: stale locks are broken at once --------------------------------------------------------------
def _plant_lock(cache: AssetCache, key: str, value: object) -> None:
    cache._index._cache.add(f"lock:{key}", value if isinstance(value, str) else json.dumps(value))


@pytest.mark.parametrize(
    "holder",
    [
        # a live pid (ours) that belongs to a process started at another time: pid reuse
        {**owner_identity(), "started": "1", "token": "x"},
        "garbage",
        json.dumps(["not", "a", "holder"]),
        {"host": socket.gethostname(), "pid": "12x", "token": "x"},
        {"host": socket.gethostname(), "pid": -5, "started": None},
    ],
)
def test_stale_or_garbage_locks_are_broken_at_once(tmp_path: Path, store: CountingStore, holder: object) -> None:
    obj = store.add(b"abc", "a")
    # with the old check this waited the whole timeout (here 3 s instead of 1 h) and raised
    with AssetCache(tmp_path / "c", lock_timeout=3.0) as cache:
        _plant_lock(cache, f"{RID}:{obj.md5}", holder)
        assert cache.fetch(RID, obj.md5, "a", obj.url, store).read_bytes() == b"abc"


def test_a_live_holder_and_a_holder_on_another_host_are_waited_for(tmp_path: Path, store: CountingStore) -> None:
    obj = store.add(b"abc", "a")
    key = f"{RID}:{obj.md5}"
    for holder in ({**owner_identity(), "token": "x"}, {"host": "elsewhere.example", "pid": 1, "token": "x"}):
        with AssetCache(tmp_path / "c", lock_timeout=0.2) as cache:
            _plant_lock(cache, key, holder)
            with pytest.raises(CacheLockTimeout):
                cache.fetch(RID, obj.md5, "a", obj.url, store)
            cache.break_lock(key)


def test_one_liveness_check_in_the_package() -> None:
    from deriva_ml.cache import _index
    from deriva_ml.execution import _lease

    assert _lease.owner_is_alive is owner_is_alive and _index.owner_is_alive is owner_is_alive
    me = owner_identity()
    assert owner_is_alive(me) is True
    assert owner_is_alive({**me, "started": "1"}) is False  # pid reuse
    assert owner_is_alive({**me, "pid": "x"}) is False
    assert owner_is_alive({**me, "host": "elsewhere.example"}) is None
