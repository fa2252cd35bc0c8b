"""``size_limit`` accounting: a running total, so a miss below the limit never lists the index."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cache_doubles import CountingStore

from deriva_ml.cache import AssetCache


def _full_scans(cache: AssetCache) -> list[str]:
    """SQL statements that list the whole index table, traced on the index's real SQLite connection."""
    seen: list[str] = []
    con: sqlite3.Connection = cache._index._cache._con  # diskcache's connection for this thread
    con.set_trace_callback(seen.append)
    return seen


def _is_scan(sql: str) -> bool:
    s = " ".join(sql.split()).upper()
    return s.startswith("SELECT") and "FROM CACHE" in s and "WHERE KEY" not in s and "WHERE ROWID" not in s


def test_misses_below_the_limit_do_not_scan_the_index(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "store")
    objs = [store.add(i.to_bytes(4, "big") * 25, f"{i}.bin") for i in range(40)]
    scans: dict[int, int] = {}
    for n in (5, 40):
        with AssetCache(tmp_path / f"c{n}", size_limit=10**9) as cache:
            trace = _full_scans(cache)
            for i, o in enumerate(objs[:n]):
                cache.fetch(f"1-{i:04X}", o.md5, f"{i}.bin", o.url, store)
            scans[n] = sum(1 for sql in trace if _is_scan(sql))
            assert cache.stats().bytes == 100 * n
    # at most one scan (an index without the running total gets it once), however many entries
    assert scans[5] == scans[40] <= 1, scans


def test_running_total_follows_puts_restats_evictions_and_clear(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "store")
    objs = [store.add(bytes([i]) * (100 * (i + 1)), f"{i}.bin") for i in range(4)]
    now = [1_700_000_000.0]
    with AssetCache(tmp_path / "c", size_limit=700, clock=lambda: now[0], touch_interval=0) as cache:
        for i, o in enumerate(objs[:3]):  # 100 + 200 + 300 = 600 <= 700: nothing evicted
            cache.fetch(f"1-A{i}", o.md5, f"{i}.bin", o.url, store)
            now[0] += 1
        assert cache._index.total_bytes() == 600 == cache.stats().bytes
        cache.fetch("1-A3", objs[3].md5, "3.bin", objs[3].url, store)  # +400 = 1000 > 700: evicts A0, A1 (LRU)
        assert cache.lookup("1-A0", objs[0].md5) is None and cache.lookup("1-A1", objs[1].md5) is None
        assert cache._index.total_bytes() == 700 == cache.stats().bytes
        # the same key written again (a restat after re-verification) replaces its size, never adds it twice
        entry = cache._index.get(f"1-A2:{objs[2].md5}")
        assert entry is not None
        cache._index.put(entry)
        assert cache._index.total_bytes() == 700
        cache.clear(older_than_days=0, now=now[0] + 10)
        assert cache._index.total_bytes() == 0 == cache.stats().bytes


def test_an_index_without_the_total_gets_it_from_one_scan(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "store")
    objs = [store.add(bytes([i]) * 100, f"{i}.bin") for i in range(3)]
    with AssetCache(tmp_path / "c") as cache:
        for i, o in enumerate(objs):
            cache.fetch(f"1-A{i}", o.md5, f"{i}.bin", o.url, store)
        cache._index._cache.delete("counter:bytes")  # as written by a version that kept no total
    with AssetCache(tmp_path / "c", size_limit=250) as cache:
        o = store.add(b"x" * 100, "x.bin")
        cache.fetch("1-A9", o.md5, "x.bin", o.url, store)  # 400 > 250: the two oldest go
        assert cache._index.total_bytes() == cache.stats().bytes <= 250
