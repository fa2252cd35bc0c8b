"""The content-addressed asset cache: in-process dict → diskcache index → object store.

Layout under ``cache_dir``::

    index/                       diskcache (SQLite) — entries, locks, counters
    assets/{rid}_{md5}/<Filename> the verified bytes, read-only (0o444)
    tmp/<random>/<Filename>      downloads in flight (same file system, so the final move is atomic)

See ``docs/asset-cache.md`` for the rules.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import attrs

from deriva_ml._log import get_logger as _get_logger
from deriva_ml.cache._files import READ_ONLY, fetch_into_place, link_into, md5_file, remove_tree
from deriva_ml.cache._index import BoundedLock, CacheIndex
from deriva_ml.cache._repair import rebuild_index, verify_entries
from deriva_ml.cache._reports import CacheStats, ClearReport, VerifyReport
from deriva_ml.cache.policy import (
    CacheEntry,
    entry_dirname,
    entry_key,
    needs_touch,
    normalize_md5,
    select_expired,
    select_lru_evictions,
    stat_is_fresh,
    validate_filename,
    validate_rid,
)
from deriva_ml.core.errors import ValidationError
from deriva_ml.store.port import ObjectStore, ProgressCallback


class AssetCache:
    """MD5-addressed cache of asset files, shared safely by processes on one machine.

    ``size_limit`` (bytes, ``None`` = unbounded) is enforced after each new entry by evicting least
    recently used entries, never the entry just added. ``clock`` supplies "now" (seconds since the
    epoch) for ``last_used`` stamps and ``clear``. ``lock_timeout`` bounds how long a process waits
    for another one fetching the same asset; ``lock_expire`` lets a lock of a crashed process on
    another host lapse (a dead holder on this host is detected at once). ``trust_store_md5`` (default
    ``True``): hand the MD5 to ``store.get``, whose contract is to verify it in its copy pass, and
    skip a second read; ``False`` re-hashes the file ourselves after the store wrote it — see
    :func:`deriva_ml.cache._files.fetch_verified` and ``docs/asset-cache.md``.
    """

    def __init__(
        self,
        cache_dir: Path | str,
        *,
        size_limit: int | None = None,
        clock: Callable[[], float] = time.time,
        lock_timeout: float = 3600.0,
        lock_expire: float | None = 6 * 3600.0,
        touch_interval: float = 60.0,
        trust_store_md5: bool = True,
    ) -> None:
        if size_limit is not None and size_limit < 0:
            raise ValidationError(f"size_limit={size_limit!r} must be >= 0 bytes or None")
        self.cache_dir = Path(cache_dir).absolute()
        self.size_limit = size_limit
        self._clock = clock
        # every entry lock: how long to wait for another process; when a crashed holder's lock lapses
        self._lock_timeout, self._lock_expire = lock_timeout, lock_expire
        self._touch_interval = touch_interval
        self._trust_store_md5 = trust_store_md5
        self._assets = self.cache_dir / "assets"
        self._tmp = self.cache_dir / "tmp"
        self._assets.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._index = CacheIndex(self.cache_dir / "index")
        self._memo: dict[str, CacheEntry] = {}
        if self._index.rebuilt:
            rebuild_index(self)

    def close(self) -> None:
        self._index.close()

    def __enter__(self) -> AssetCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AssetCache({str(self.cache_dir)!r}, size_limit={self.size_limit!r})"

    # public API ----------------------------------------------------------------------------------
    def fetch(
        self,
        rid: str,
        md5: str,
        filename: str,
        url: str,
        store: ObjectStore,
        *,
        length: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> Path:
        """The path of the verified cached copy of asset ``rid`` with content ``md5``.

        Hit: the index's size and mtime match ``os.stat`` of the file — the bytes are not read.
        Stat changed: the file is re-hashed; still good → index updated; bad → evicted and
        re-fetched. Miss: downloaded once (other processes wait on a lock), verified, made
        read-only and moved into place atomically. ``progress(done, total)`` is in bytes; on a hit
        it is called once with ``(size, size)``.
        """
        rid = validate_rid(rid)
        md5 = normalize_md5(md5)
        filename = validate_filename(filename)
        key = entry_key(rid, md5)

        entry = self._fast_lookup(key)
        if entry is None:
            with self._lock(key):
                entry = self._checked_lookup(key)
                if entry is None:
                    self._index.incr("misses")
                    started = time.monotonic()
                    dirname = entry_dirname(rid, md5)
                    final = self._assets / dirname / filename
                    fetch_into_place(
                        store,
                        url,
                        md5,
                        final,
                        tmp_parent=self._tmp,
                        prefix=f"{dirname}.",
                        length=length,
                        progress=progress,
                        trust_store_md5=self._trust_store_md5,
                        entry_dir=True,
                    )
                    entry = self._new_entry(rid, md5, filename, dirname, final)
                    self._index.put(entry)
                    self._memo[entry.key] = entry
                    _get_logger(__name__).info(
                        "cache.fetched",
                        rid=rid,
                        md5=md5,
                        url=url,
                        path=str(final),
                        bytes=entry.size,
                        seconds=round(time.monotonic() - started, 3),
                        trust_store_md5=self._trust_store_md5,
                    )
                    self._enforce_size_limit(protect=key)
                    return self._path(entry)
        self._record_hit(entry)
        if progress is not None:
            progress(entry.size, entry.size)
        return self._path(entry)

    def lookup(self, rid: str, md5: str) -> Path | None:
        """The cached path if ``(rid, md5)`` is a hit right now (stat check only), else ``None``."""
        entry = self._fast_lookup(entry_key(validate_rid(rid), normalize_md5(md5)))
        return None if entry is None else self._path(entry)

    @staticmethod
    def link_into(path: Path, working_dir: Path, name: str | None = None) -> Path:
        """Symlink (or, where impossible, copy) a cached file into ``working_dir``; see :func:`link_into`."""
        return link_into(path, working_dir, name)

    def verify(self) -> VerifyReport:
        """Re-hash every entry; evict those whose bytes are missing or wrong; remove strays.

        Backs ``ml.verify_cache()``. Each entry is checked under its lock, so a concurrent fetch of
        the same asset waits. Directories under ``assets/`` that no entry owns and temporary
        downloads older than a day are removed too.
        """
        return verify_entries(self)

    def stats(self) -> CacheStats:
        """Entry count, bytes held and counters (backs ``ml.cache_stats()``)."""
        entries = list(self._index.entries())
        return CacheStats(
            cache_dir=self.cache_dir,
            entries=len(entries),
            bytes=sum(e.size for e in entries),
            hits=self._index.counter("hits"),
            misses=self._index.counter("misses"),
            evictions=self._index.counter("evictions"),
            corruptions=self._index.counter("corruptions"),
            size_limit=self.size_limit,
        )

    def clear(self, older_than_days: float | None = None, *, now: float | None = None) -> ClearReport:
        """Remove entries unused for more than ``older_than_days`` days (all when ``None``).

        ``now`` defaults to the cache's clock. The choice is :func:`select_expired`; an entry being
        fetched by another process right now is skipped (reported in ``skipped_busy``), not waited
        for.
        """
        log = _get_logger(__name__)
        now = self._clock() if now is None else now
        chosen = select_expired(self._index.entries(), older_than_days, now)
        removed, skipped, freed = self._remove_keys(chosen, reason="clear", recheck_age=(older_than_days, now))
        log.info("cache.cleared", older_than_days=older_than_days, removed=len(removed), bytes_freed=freed)
        return ClearReport(removed=tuple(removed), bytes_freed=freed, skipped_busy=tuple(skipped))

    def break_lock(self, key: str) -> bool:
        """Remove the lock on ``key`` (``"{rid}:{md5}"``) left by a process that died elsewhere."""
        return self._index.break_lock(key)

    # internals -----------------------------------------------------------------------------------
    def _path(self, entry: CacheEntry) -> Path:
        return self.cache_dir / entry.path

    def _lock(self, key: str, timeout: float | None = None) -> BoundedLock:
        return self._index.lock(
            key, timeout=self._lock_timeout if timeout is None else timeout, expire=self._lock_expire
        )

    def _fast_lookup(self, key: str) -> CacheEntry | None:
        """Memo (else index) entry whose stat still matches; no lock, no read of the bytes."""
        entry = self._memo.get(key)
        from_memo = entry is not None
        if entry is None:
            entry = self._index.get(key)
            if entry is None:
                return None
        try:
            st = os.lstat(self._path(entry))
        except OSError:
            self._memo.pop(key, None)
            return None
        if not stat.S_ISREG(st.st_mode):  # a symlink planted in the cache is never followed
            self._memo.pop(key, None)
            return None
        if stat_is_fresh(entry, st.st_size, st.st_mtime_ns):
            self._memo[key] = entry
            return entry
        self._memo.pop(key, None)
        if from_memo:  # another process may have re-verified or re-fetched it since
            fresh = self._index.get(key)
            if fresh is not None and stat_is_fresh(fresh, st.st_size, st.st_mtime_ns):
                self._memo[key] = fresh
                return fresh
        return None

    def _checked_lookup(self, key: str) -> CacheEntry | None:
        """Under the key's lock: the index entry, re-hashed if its stat changed; bad ones evicted."""
        entry = self._index.get(key)
        if entry is None:
            return None
        path = self._path(entry)
        try:
            st = os.lstat(path)
        except OSError:
            self._evict(entry, reason="file is missing", corrupt=True)
            return None
        if not stat.S_ISREG(st.st_mode):
            self._evict(entry, reason="not a regular file (a symlink?)", corrupt=True)
            return None
        if stat_is_fresh(entry, st.st_size, st.st_mtime_ns):
            self._memo[key] = entry
            return entry
        log = _get_logger(__name__)
        log.warning(
            "cache.stat_changed",
            key=key,
            path=str(path),
            size=(entry.size, st.st_size),
            mtime_ns=(entry.mtime_ns, st.st_mtime_ns),
        )
        try:
            actual = md5_file(path)
        except OSError as exc:
            self._evict(entry, reason=f"unreadable: {exc}", corrupt=True)
            return None
        if actual != entry.md5:
            self._evict(entry, reason=f"MD5 is {actual}, expected {entry.md5}", corrupt=True)
            return None
        return self._restat(entry, st)

    def _new_entry(self, rid: str, md5: str, filename: str, dirname: str, file: Path) -> CacheEntry:
        """The index entry of ``file``, just placed at ``assets/<dirname>/<filename>``: its size and mtime now."""
        st = os.stat(file)
        now = self._clock()
        return CacheEntry(
            rid=rid,
            md5=md5,
            filename=filename,
            path=f"assets/{dirname}/{filename}",
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            last_used=now,
            created=now,
        )

    def _restat(self, entry: CacheEntry, st: os.stat_result) -> CacheEntry:
        """The bytes re-hashed fine: keep the file read-only and record its new stat."""
        path = self._path(entry)
        os.chmod(path, READ_ONLY)
        new = attrs.evolve(entry, size=st.st_size, mtime_ns=os.stat(path).st_mtime_ns)
        self._index.put(new)
        self._memo[new.key] = new
        _get_logger(__name__).info("cache.restat", key=new.key, path=str(path))
        return new

    def _record_hit(self, entry: CacheEntry) -> None:
        self._index.incr("hits")
        now = self._clock()
        if needs_touch(entry.last_used, now, self._touch_interval):
            touched = self._index.update(entry.key, lambda e: attrs.evolve(e, last_used=max(e.last_used, now)))
            if touched is not None:
                self._memo[entry.key] = touched

    def _evict(self, entry: CacheEntry, *, reason: str, corrupt: bool = False) -> int:
        """Drop the index entry first (readers then miss), then the directory. Caller holds the lock."""
        self._index.delete(entry.key)
        self._memo.pop(entry.key, None)
        remove_tree(self._assets / entry.dirname)
        self._index.incr("evictions")
        if corrupt:
            self._index.incr("corruptions")
            _get_logger(__name__).warning("cache.evicted", key=entry.key, reason=reason, path=str(self._path(entry)))
        else:
            _get_logger(__name__).info("cache.evicted", key=entry.key, reason=reason)
        return entry.size

    def _remove_keys(
        self,
        keys: Iterable[str],
        *,
        reason: str,
        recheck_age: tuple[float | None, float] | None = None,
        busy_timeout: float = 0.05,
    ) -> tuple[list[str], list[str], int]:
        removed: list[str] = []
        skipped: list[str] = []
        freed = 0
        for key in keys:
            lock = self._lock(key, timeout=busy_timeout)
            try:
                lock.acquire()
            except TimeoutError:
                skipped.append(key)
                continue
            try:
                entry = self._index.get(key)
                if entry is None:
                    continue
                if recheck_age is not None and not select_expired([entry], *recheck_age):
                    continue  # used again since we decided
                freed += self._evict(entry, reason=reason)
                removed.append(key)
            finally:
                lock.release()
        return removed, skipped, freed

    def _enforce_size_limit(self, *, protect: str) -> None:
        if self.size_limit is None or self._index.total_bytes() <= self.size_limit:
            return  # the common case after a miss: one counter read, no scan of the index
        chosen = select_lru_evictions(self._index.entries(), self.size_limit, protect=(protect,))
        if chosen:
            self._remove_keys(chosen, reason="size_limit")
