"""The asset cache against a counting fake of the object store (and the real local store if present)."""

from __future__ import annotations

import multiprocessing
import os
import stat
import sys
from pathlib import Path

import pytest
import structlog
from cache_doubles import CountingStore, fetch_in_child, md5_hex

from deriva_ml.cache import AssetCache, CacheLockTimeout, download_uncached, link_into, md5_file
from deriva_ml.core.errors import ChecksumMismatch, InvalidFileName, InvalidRID, ValidationError

RID = "1-ABC"
NAMES = ["weights.pt", "my model.tar.gz", "données état.v1.2.csv", "README"]

# ---- counting opens with an audit hook (root ignores chmod 000, so permissions prove nothing) ------
_WATCHED: set[str] = set()
_OPENS: list[str] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event == "open" and _WATCHED and args:
        target = args[0]
        if isinstance(target, (str, bytes, os.PathLike)):
            name = os.path.abspath(os.fsdecode(target))
            if name in _WATCHED:
                _OPENS.append(name)


sys.addaudithook(_audit)


@pytest.fixture
def count_opens():
    def watch(path: Path) -> list[str]:
        _WATCHED.add(os.path.abspath(path))
        _OPENS.clear()
        return _OPENS

    yield watch
    _WATCHED.clear()
    _OPENS.clear()


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> CountingStore:
    return CountingStore(tmp_path / "store")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(tmp_path: Path, clock: Clock):
    with AssetCache(tmp_path / "cache", clock=clock) as c:
        yield c


def _tamper(path: Path, data: bytes) -> None:
    os.chmod(path, 0o644)
    path.write_bytes(data)


# ---- hit / miss ----------------------------------------------------------------------------------
@pytest.mark.parametrize("filename", NAMES)
def test_second_fetch_reads_nothing_from_the_store(cache: AssetCache, store: CountingStore, filename: str):
    obj = store.add(b"weights" * 1000, filename)
    first = cache.fetch(RID, obj.md5, filename, obj.url, store, length=obj.length)
    second = cache.fetch(RID, obj.md5, filename, obj.url, store, length=obj.length)
    assert first == second
    assert first == cache.cache_dir / "assets" / f"{RID}_{obj.md5}" / filename
    assert store.gets == [obj.url]
    assert first.read_bytes() == b"weights" * 1000
    assert stat.S_IMODE(first.stat().st_mode) == 0o444
    s = cache.stats()
    assert (s.entries, s.bytes, s.hits, s.misses) == (1, obj.length, 1, 1)
    assert list((cache.cache_dir / "tmp").iterdir()) == []


def test_hit_survives_a_new_process_object(tmp_path: Path, store: CountingStore):
    obj = store.add(b"abc", "a.bin")
    with AssetCache(tmp_path / "c") as c1:
        c1.fetch(RID, obj.md5, "a.bin", obj.url, store)
    with AssetCache(tmp_path / "c") as c2:  # empty in-process dict: served from the diskcache index
        c2.fetch(RID, obj.md5, "a.bin", obj.url, store)
        assert c2.stats().hits == 1
    assert len(store.gets) == 1


def test_hit_does_not_open_the_file(cache: AssetCache, store: CountingStore, count_opens):
    obj = store.add(b"x" * 4096, "w.pt")
    path = cache.fetch(RID, obj.md5, "w.pt", obj.url, store)
    opens = count_opens(path)
    for _ in range(3):
        assert cache.fetch(RID, obj.md5, "w.pt", obj.url, store) == path
    assert opens == []
    # positive control: the hook does see opens of that path
    _tamper(path, b"y" * 4096)  # one open by write_bytes
    cache.fetch(RID, obj.md5, "w.pt", obj.url, store)  # re-hash: at least one more
    assert len(opens) >= 2


def test_md5_change_in_catalog_is_a_miss(cache: AssetCache, store: CountingStore):
    old = store.add(b"version 1", "w.pt")
    new = store.add(b"version 2", "w.pt")
    p_old = cache.fetch(RID, old.md5, "w.pt", old.url, store)
    p_new = cache.fetch(RID, new.md5, "w.pt", new.url, store)
    assert p_old != p_new
    assert p_new.read_bytes() == b"version 2"
    assert store.gets == [old.url, new.url]
    assert cache.stats().misses == 2


def test_upper_case_md5_is_the_same_key(cache: AssetCache, store: CountingStore):
    obj = store.add(b"abc", "a")
    cache.fetch(RID, obj.md5, "a", obj.url, store)
    cache.fetch(RID, obj.md5.upper(), "a", obj.url, store)
    assert len(store.gets) == 1


# ---- corruption ----------------------------------------------------------------------------------
@pytest.mark.parametrize("replacement", ["same size", "other size"])
def test_corrupted_entry_is_detected_and_refetched(cache: AssetCache, store: CountingStore, replacement: str):
    data = b"good bytes " * 100
    obj = store.add(data, "w.pt")
    path = cache.fetch(RID, obj.md5, "w.pt", obj.url, store)
    bad = bytes(len(data)) if replacement == "same size" else b"short"
    with structlog.testing.capture_logs() as logs:
        _tamper(path, bad)
        again = cache.fetch(RID, obj.md5, "w.pt", obj.url, store)
    assert again == path
    assert again.read_bytes() == data
    assert stat.S_IMODE(again.stat().st_mode) == 0o444
    assert len(store.gets) == 2
    assert cache.stats().corruptions == 1
    assert any(e["event"] == "cache.evicted" and e["log_level"] == "warning" for e in logs)


def test_touched_but_intact_entry_is_rehashed_and_kept(cache: AssetCache, store: CountingStore):
    obj = store.add(b"same", "w.pt")
    path = cache.fetch(RID, obj.md5, "w.pt", obj.url, store)
    os.utime(path, ns=(1, 1))  # stat changes, bytes do not
    assert cache.fetch(RID, obj.md5, "w.pt", obj.url, store) == path
    assert len(store.gets) == 1
    assert cache.stats().corruptions == 0
    # the index now holds the new stat: the next hit needs no re-hash
    assert cache.lookup(RID, obj.md5) == path


def test_deleted_file_is_refetched(cache: AssetCache, store: CountingStore):
    obj = store.add(b"abc", "w.pt")
    path = cache.fetch(RID, obj.md5, "w.pt", obj.url, store)
    path.unlink()
    assert cache.fetch(RID, obj.md5, "w.pt", obj.url, store).read_bytes() == b"abc"
    assert len(store.gets) == 2


# ---- bad downloads -------------------------------------------------------------------------------
@pytest.mark.parametrize("trust", [False, True])
def test_wrong_bytes_from_store_raise_and_leave_nothing(tmp_path: Path, store: CountingStore, trust: bool):
    obj = store.add(b"the real thing", "w.pt")
    store.tamper = b"something else"
    with AssetCache(tmp_path / "c", trust_store_md5=trust) as cache:
        with pytest.raises(ChecksumMismatch) as info:
            cache.fetch(RID, obj.md5, "w.pt", obj.url, store)
        assert info.value.expected == obj.md5
        assert info.value.actual == md5_hex(b"something else")
        assert cache.stats().entries == 0
        assert list((cache.cache_dir / "assets").iterdir()) == []
        assert list((cache.cache_dir / "tmp").iterdir()) == []
        assert cache.lookup(RID, obj.md5) is None
        store.tamper = None  # the store recovers: the next fetch works
        assert cache.fetch(RID, obj.md5, "w.pt", obj.url, store).read_bytes() == b"the real thing"


def test_default_hands_the_md5_to_the_store(cache: AssetCache, store: CountingStore):
    obj = store.add(b"real", "w.pt")
    cache.fetch(RID, obj.md5, "w.pt", obj.url, store)
    assert store.get_md5_args == [obj.md5]  # the store verifies in its copy pass


def test_untrusting_mode_verifies_even_a_store_that_ignores_md5(tmp_path: Path, store: CountingStore):
    obj = store.add(b"real", "w.pt")
    store.tamper = b"fake"
    store.honour_md5 = False
    with AssetCache(tmp_path / "c", trust_store_md5=False) as cache:
        with pytest.raises(ChecksumMismatch):
            cache.fetch(RID, obj.md5, "w.pt", obj.url, store)
        assert store.get_md5_args == [None]  # the store only copies; we hash
        assert cache.stats().entries == 0
    with pytest.raises(ChecksumMismatch):
        download_uncached(obj.url, obj.md5, "w.pt", store, tmp_path / "work", trust_store_md5=False)


def test_length_mismatch_raises(cache: AssetCache, store: CountingStore):
    obj = store.add(b"real", "w.pt")
    with pytest.raises(ChecksumMismatch, match="expected 5 bytes, got 4"):
        cache.fetch(RID, obj.md5, "w.pt", obj.url, store, length=5)
    assert cache.stats().entries == 0


def test_bad_arguments_are_rejected(cache: AssetCache, store: CountingStore):
    obj = store.add(b"x", "a")
    with pytest.raises(InvalidRID):
        cache.fetch("../etc", obj.md5, "a", obj.url, store)
    with pytest.raises(ValidationError, match="not an MD5"):
        cache.fetch(RID, "abc", "a", obj.url, store)
    with pytest.raises(InvalidFileName):
        cache.fetch(RID, obj.md5, "../a", obj.url, store)
    assert store.gets == []


# ---- progress ------------------------------------------------------------------------------------
def test_progress_is_in_bytes(cache: AssetCache, store: CountingStore):
    obj = store.add(b"z" * 1234, "z")
    seen: list[tuple[int, int]] = []
    cache.fetch(RID, obj.md5, "z", obj.url, store, progress=lambda d, t: seen.append((d, t)))
    cache.fetch(RID, obj.md5, "z", obj.url, store, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1234, 1234), (1234, 1234)]


# ---- verify / clear / size limit ---------------------------------------------------------------
def test_verify_reports_and_evicts(cache: AssetCache, store: CountingStore):
    objs = [store.add(f"asset {i}".encode(), f"f{i}.bin") for i in range(3)]
    paths = [cache.fetch(f"1-A{i}", o.md5, f"f{i}.bin", o.url, store) for i, o in enumerate(objs)]
    # corrupt one in a way the stat check cannot see (same size, mtime restored)
    st = paths[1].stat()
    _tamper(paths[1], b"ASSET 1")
    os.utime(paths[1], ns=(st.st_atime_ns, st.st_mtime_ns))
    paths[2].unlink()
    stray = cache.cache_dir / "assets" / "junk"
    stray.mkdir()
    report = cache.verify()
    assert report.checked == 3
    assert report.ok == (f"1-A0:{objs[0].md5}",)
    assert {b.key for b in report.evicted} == {f"1-A1:{objs[1].md5}", f"1-A2:{objs[2].md5}"}
    assert any("MD5 is" in b.reason for b in report.evicted)
    assert any("missing" in b.reason for b in report.evicted)
    assert report.orphans_removed == (str(stray),)
    assert not report.clean
    assert cache.stats().entries == 1
    assert not paths[1].parent.exists()
    assert cache.verify().clean


def test_clear_older_than_removes_old_entries_only(cache: AssetCache, store: CountingStore, clock: Clock):
    old = store.add(b"old", "old.bin")
    new = store.add(b"new", "new.bin")
    p_old = cache.fetch("1-OLD", old.md5, "old.bin", old.url, store)
    clock.now += 10 * 86_400
    p_new = cache.fetch("1-NEW", new.md5, "new.bin", new.url, store)
    report = cache.clear(older_than_days=5, now=clock.now)
    assert report.removed == (f"1-OLD:{old.md5}",)
    assert report.bytes_freed == 3
    assert not p_old.exists()
    assert p_new.exists()
    assert cache.clear(older_than_days=5, now=clock.now).removed == ()
    assert cache.clear().removed == (f"1-NEW:{new.md5}",)  # None: everything; clock defaults
    assert cache.stats().entries == 0


def test_a_hit_refreshes_last_used(cache: AssetCache, store: CountingStore, clock: Clock):
    obj = store.add(b"kept warm", "w")
    cache.fetch(RID, obj.md5, "w", obj.url, store)
    clock.now += 10 * 86_400
    cache.fetch(RID, obj.md5, "w", obj.url, store)  # used today
    assert cache.clear(older_than_days=5).removed == ()


def test_size_limit_evicts_least_recently_used(tmp_path: Path, store: CountingStore, clock: Clock):
    objs = [store.add(bytes([i]) * 100, f"{i}.bin") for i in range(4)]
    with AssetCache(tmp_path / "c", size_limit=250, clock=clock, touch_interval=0) as cache:
        for i, o in enumerate(objs[:2]):
            cache.fetch(f"1-A{i}", o.md5, f"{i}.bin", o.url, store)
            clock.now += 1
        cache.fetch("1-A0", objs[0].md5, "0.bin", objs[0].url, store)  # A0 used most recently
        clock.now += 1
        cache.fetch("1-A2", objs[2].md5, "2.bin", objs[2].url, store)  # 300 > 250: evict LRU = A1
        assert cache.lookup("1-A1", objs[1].md5) is None
        assert cache.lookup("1-A0", objs[0].md5) is not None
        assert cache.stats().bytes == 200
    with AssetCache(tmp_path / "tiny", size_limit=10) as cache:  # the new entry itself stays
        path = cache.fetch("1-A3", objs[3].md5, "3.bin", objs[3].url, store)
        assert path.exists()


# ---- links and uncached downloads ---------------------------------------------------------------
def test_link_into_symlinks_with_a_chosen_name(cache: AssetCache, store: CountingStore, tmp_path: Path):
    obj = store.add(b"w", "w.pt")
    path = cache.fetch(RID, obj.md5, "w.pt", obj.url, store)
    work = tmp_path / "exec" / "assets"
    link = cache.link_into(path, work, name="my weights.pt")
    assert link == work / "my weights.pt"
    assert link.is_symlink() and os.readlink(link) == str(path)
    assert link.read_bytes() == b"w"
    assert link_into(path, work, name="my weights.pt") == link  # idempotent
    (work / "user.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        link_into(path, work, name="user.txt")
    assert (work / "user.txt").read_text() == "mine"


def test_link_into_copies_where_symlinks_are_impossible(
    monkeypatch: pytest.MonkeyPatch, cache: AssetCache, store: CountingStore, tmp_path: Path
):
    obj = store.add(b"w", "w.pt")
    path = cache.fetch(RID, obj.md5, "w.pt", obj.url, store)

    def no_symlinks(*args: object, **kwargs: object) -> None:
        raise OSError(1, "symlinks not supported here")

    monkeypatch.setattr(os, "symlink", no_symlinks)
    link = link_into(path, tmp_path / "exec")
    assert not link.is_symlink()
    assert link.read_bytes() == b"w"


def test_download_uncached_verifies_and_never_touches_the_cache(
    cache: AssetCache, store: CountingStore, tmp_path: Path
):
    obj = store.add(b"fresh every time", "data file.csv")
    work = tmp_path / "exec"
    p = download_uncached(obj.url, obj.md5, "data file.csv", store, work)
    assert p == work / "data file.csv" and p.read_bytes() == b"fresh every time"
    download_uncached(obj.url, obj.md5, "data file.csv", store, work)
    assert len(store.gets) == 2
    assert cache.stats().entries == 0
    store.tamper = b"evil"
    with pytest.raises(ChecksumMismatch):
        download_uncached(obj.url, obj.md5, "other.csv", store, work)
    assert sorted(x.name for x in work.iterdir()) == ["data file.csv"]


# ---- concurrency ---------------------------------------------------------------------------------
def test_two_processes_download_once(tmp_path: Path):
    store = CountingStore(tmp_path / "store")
    obj = store.add(os.urandom(1 << 16), "shared weights.pt")
    log = tmp_path / "downloads.log"
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    args = (
        str(tmp_path / "cache"),
        str(store.root),
        str(log),
        obj.url,
        obj.md5,
        "shared weights.pt",
        barrier,
    )
    procs = [ctx.Process(target=fetch_in_child, args=args) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert len(log.read_text().splitlines()) == 1
    results = [Path(r.read_text()) for r in tmp_path.glob("downloads.log.*.result")]
    assert len(results) == 2  # both processes got it
    assert results[0] == results[1]
    path = results[0]
    assert md5_file(path) == obj.md5


def test_lock_wait_is_bounded(tmp_path: Path, store: CountingStore):
    obj = store.add(b"abc", "a")
    with AssetCache(tmp_path / "c", lock_timeout=0.2) as cache:
        key = f"{RID}:{obj.md5}"
        holder = cache._index.lock(key, timeout=1, expire=None)  # as another live process would
        holder.acquire()
        try:
            with pytest.raises(CacheLockTimeout, match=key):
                cache.fetch(RID, obj.md5, "a", obj.url, store)
        finally:
            holder.release()
        assert cache.fetch(RID, obj.md5, "a", obj.url, store).exists()


def test_lock_of_a_dead_process_is_broken(tmp_path: Path, store: CountingStore):
    import json
    import socket

    obj = store.add(b"abc", "a")
    with AssetCache(tmp_path / "c", lock_timeout=5) as cache:
        dead = multiprocessing.get_context("spawn").Process(target=int)
        dead.start()
        dead.join()
        token = json.dumps({"host": socket.gethostname(), "pid": dead.pid, "token": "x"})
        cache._index._cache.add(f"lock:{RID}:{obj.md5}", token)
        assert cache.fetch(RID, obj.md5, "a", obj.url, store).exists()


# ---- the real local store, when it exists --------------------------------------------------------
def test_against_the_local_object_store(tmp_path: Path, cache: AssetCache):
    local = pytest.importorskip("deriva_ml.store.local")
    src = tmp_path / "my model.tar.gz"
    src.write_bytes(b"real store bytes" * 1000)
    real = local.LocalObjectStore(tmp_path / "objects")
    obj = real.put(src, table="Model", filename="my model.tar.gz")
    path = cache.fetch(RID, obj.md5, "my model.tar.gz", obj.url, real, length=obj.length)
    assert path.read_bytes() == src.read_bytes()
    assert cache.fetch(RID, obj.md5, "my model.tar.gz", obj.url, real) == path
    assert cache.stats().hits == 1


# ---- crash leftovers -----------------------------------------------------------------------------
def test_leftover_directory_without_entry_is_replaced(cache: AssetCache, store: CountingStore):
    obj = store.add(b"abc", "w.pt")
    leftover = cache.cache_dir / "assets" / f"{RID}_{obj.md5}"
    leftover.mkdir()
    (leftover / "w.pt").write_bytes(b"half-written")  # crash between move and index write
    (leftover / "other").write_bytes(b"x")
    path = cache.fetch(RID, obj.md5, "w.pt", obj.url, store)
    assert path.read_bytes() == b"abc"
    assert sorted(p.name for p in leftover.iterdir()) == ["w.pt"]


def test_malformed_index_value_is_a_miss(cache: AssetCache, store: CountingStore):
    obj = store.add(b"abc", "w.pt")
    cache._index._cache.set(f"entry:{RID}:{obj.md5}", "{not json")
    assert cache.fetch(RID, obj.md5, "w.pt", obj.url, store).read_bytes() == b"abc"
    assert cache.fetch(RID, obj.md5, "w.pt", obj.url, store).read_bytes() == b"abc"
    assert len(store.gets) == 1


def test_clear_skips_an_entry_being_fetched(cache: AssetCache, store: CountingStore):
    obj = store.add(b"abc", "w.pt")
    path = cache.fetch(RID, obj.md5, "w.pt", obj.url, store)
    holder = cache._index.lock(f"{RID}:{obj.md5}", timeout=1, expire=None)
    holder.acquire()
    try:
        report = cache.clear()
    finally:
        holder.release()
    assert report.removed == ()
    assert report.skipped_busy == (f"{RID}:{obj.md5}",)
    assert path.exists()
