"""A small typed wrapper over :class:`diskcache.Cache`: the asset-cache index and its locks.

Keys are plain ``str`` (diskcache stores them raw; other types would be pickled) with a prefix per
kind: ``entry:{rid}:{md5}`` → JSON text of a :class:`CacheEntry`, ``lock:{rid}:{md5}`` → JSON text
naming the holder, ``counter:{name}`` → int. Values are never pickled objects.

Eviction is switched off (``eviction_policy="none"``): diskcache's default 1 GiB limit would cull
entries — possibly the one just written, or a lock. The asset cache does its own size accounting:
``counter:bytes`` is the running total of the entries' sizes, changed in the same transaction as each
entry write or delete, so checking ``size_limit`` after a miss is one read, not a scan of the index.
An index without the counter (new, or written by an older version) gets it from one scan when
opened; ``verify()`` recomputes it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

import diskcache

from deriva_ml._log import get_logger as _get_logger
from deriva_ml._process import owner_identity, owner_is_alive
from deriva_ml.cache.policy import (
    CacheEntry,
    entry_from_json,
    entry_to_json,
    normalize_md5,
    validate_filename,
    validate_rid,
)
from deriva_ml.core.codec import parse_json
from deriva_ml.core.errors import ConfigurationError, StoreError, ValidationError

_ENTRY = "entry:"
_LOCK = "lock:"
_COUNTER = "counter:"
_BYTES = "bytes"


class CacheLockTimeout(StoreError, TimeoutError):
    """Waited too long for another process fetching the same asset."""

    def __init__(self, key: str, waited: float, holder: object) -> None:
        self.key = key
        self.waited = waited
        self.holder = holder
        super().__init__(
            f"gave up after {waited:.1f} s waiting for the asset-cache lock on {key!r}, held by "
            f"{holder!r}; if that process is gone, remove the lock with AssetCache.break_lock({key!r})"
        )


class BoundedLock(diskcache.Lock):  # type: ignore[misc]
    """:class:`diskcache.Lock` with a bounded wait, an owner token and stale-holder detection.

    The stored value names the holder (host, pid, process start time, token: the same identity as an
    execution's lease, :mod:`deriva_ml._process`). ``release`` deletes the lock only while it still
    holds our token (an expired lock re-taken by someone else is left alone). A waiter breaks at once a
    lock whose holder is a dead process on this host — including a pid now used by an unrelated
    process started at another time (pid reuse) — and a lock whose value is not a holder at all
    (garbage). A holder on another host is waited for (up to the timeout; ``expire`` ends it).
    """

    def __init__(
        self,
        cache: diskcache.Cache,
        key: str,
        *,
        timeout: float,
        expire: float | None,
        poll: float = 0.002,
        max_poll: float = 0.05,
    ) -> None:
        super().__init__(cache, key, expire=expire)
        self._timeout = timeout
        self._poll = poll
        self._max_poll = max_poll
        self._token = json.dumps({**owner_identity(), "token": uuid.uuid4().hex})

    def acquire(self) -> None:
        start = time.monotonic()
        delay = self._poll
        while True:
            if self._cache.add(self._key, self._token, expire=self._expire, retry=True):
                return
            self._break_if_stale()
            waited = time.monotonic() - start
            if waited >= self._timeout:
                raise CacheLockTimeout(self._key, waited, self._cache.get(self._key, retry=True))
            time.sleep(delay)
            delay = min(delay * 1.5, self._max_poll)

    def release(self) -> None:
        with self._cache.transact(retry=True):
            if self._cache.get(self._key, retry=True) == self._token:
                self._cache.delete(self._key, retry=True)

    def _break_if_stale(self) -> None:
        raw = self._cache.get(self._key, retry=True)
        if raw is None:
            return
        try:
            holder = parse_json(raw, f"lock holder of {self._key!r}") if isinstance(raw, str) else None
        except ValueError:
            holder = None
        if isinstance(holder, dict) and isinstance(holder.get("host"), str) and "pid" in holder:
            if owner_is_alive(holder) is not False:
                return  # alive, or on another host (cannot tell): wait
            reason = "holder process is gone (or its pid now belongs to another process)"
        else:
            reason = "lock value is not a holder"
        with self._cache.transact(retry=True):
            if self._cache.get(self._key, retry=True) == raw:
                self._cache.delete(self._key, retry=True)
        _get_logger(__name__).warning("cache.lock_broken", key=self._key, holder=repr(raw)[:200], reason=reason)

    def __enter__(self) -> BoundedLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def entry_problem(key: str, entry: CacheEntry) -> str | None:
    """Why an index entry cannot be trusted, or ``None``: it must name exactly its own file.

    The only path an entry may hold is ``assets/{rid}_{md5}/{filename}`` for its own key, with a valid
    RID, MD5 and file name — so no entry can point outside the cache (``../..``, an absolute path) or
    at another entry's file.
    """
    try:
        rid, md5 = validate_rid(entry.rid), normalize_md5(entry.md5)
        filename = validate_filename(entry.filename)
    except ValidationError as exc:
        return str(exc)
    if (rid, md5, filename) != (entry.rid, entry.md5, entry.filename) or entry.key != key:
        return f"entry names ({entry.rid!r}, {entry.md5!r}, {entry.filename!r}), not key {key!r}"
    expected = f"assets/{entry.dirname}/{entry.filename}"
    if entry.path != expected:
        return f"path {entry.path!r} is not {expected!r}"
    return None


class CacheIndex:
    """Typed access to the diskcache index under ``cache_dir/index/``.

    A corrupt index (``sqlite3.DatabaseError`` on open) is moved aside to ``index.corrupt-<time>`` and
    a fresh one is created (``rebuilt`` is then True: the asset cache re-registers its files); when even
    that fails, :class:`StoreError` names the file.
    """

    def __init__(self, directory: Path, *, sqlite_timeout: float = 60.0) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.rebuilt = False
        self.scans = 0  # full listings of the index by this object (tests check misses do not scan)
        try:
            self._cache = self._open(sqlite_timeout)
        except sqlite3.DatabaseError as exc:
            aside = directory.with_name(f"{directory.name}.corrupt-{time.time_ns()}")
            _get_logger(__name__).warning(
                "cache.index_corrupt", path=str(directory / "cache.db"), error=str(exc), moved_to=str(aside)
            )
            try:
                os.replace(directory, aside)
                directory.mkdir(parents=True, exist_ok=True)
                self._cache = self._open(sqlite_timeout)
            except (OSError, sqlite3.Error) as again:
                raise StoreError(
                    f"the asset-cache index {str(directory / 'cache.db')!r} is corrupt ({exc}) and could not be "
                    f"rebuilt ({again}); remove the directory {str(directory)!r} to start an empty index"
                ) from again
            self.rebuilt = True
        if not isinstance(self._cache.get(_COUNTER + _BYTES, default=None, retry=True), int):
            self.recount_bytes()  # an index written before the running total was kept: one scan, once

    def _open(self, sqlite_timeout: float) -> diskcache.Cache:
        cache = diskcache.Cache(
            str(self.directory),
            timeout=sqlite_timeout,
            eviction_policy="none",
            cull_limit=0,
            statistics=False,
        )
        try:
            cache.get(_COUNTER + "probe", retry=True)  # reads a page: a damaged file fails here
        except sqlite3.DatabaseError:
            cache.close()
            raise
        return cache

    # entries -------------------------------------------------------------------------------------
    def get(self, key: str) -> CacheEntry | None:
        raw = self._cache.get(_ENTRY + key, default=None, retry=True)
        if raw is None:
            return None
        try:
            if not isinstance(raw, str):
                raise ConfigurationError(f"index value for {key!r} is {type(raw).__name__}, not JSON text")
            entry = entry_from_json(parse_json(raw, f"cache index entry {key!r}"))
            problem = entry_problem(key, entry)
            if problem is not None:
                raise ConfigurationError(f"untrusted index entry for {key!r}: {problem}")
            return entry
        except (ValueError, ConfigurationError) as exc:
            _get_logger(__name__).warning("cache.index_entry_malformed", key=key, error=str(exc))
            self.delete(key)
            return None

    def _stored_size(self, key: str) -> int:
        """The size recorded in the raw entry under ``key`` (0 if none or unreadable)."""
        raw = self._cache.get(_ENTRY + key, default=None, retry=True)
        try:
            size = json.loads(raw).get("size") if isinstance(raw, str) else None
        except (ValueError, AttributeError):
            size = None
        return size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else 0

    def put(self, entry: CacheEntry) -> None:
        with self._cache.transact(retry=True):
            old = self._stored_size(entry.key)
            self._cache.set(_ENTRY + entry.key, json.dumps(entry_to_json(entry)), retry=True)
            if entry.size != old:
                self.incr(_BYTES, entry.size - old)

    def update(self, key: str, change: Callable[[CacheEntry], CacheEntry]) -> CacheEntry | None:
        """Read-modify-write one entry in a transaction; ``None`` if it is gone."""
        with self._cache.transact(retry=True):
            entry = self.get(key)
            if entry is None:
                return None
            new = change(entry)
            self.put(new)
            return new

    def delete(self, key: str) -> bool:
        with self._cache.transact(retry=True):
            old = self._stored_size(key)
            deleted = bool(self._cache.delete(_ENTRY + key, retry=True))
            if deleted and old:
                self.incr(_BYTES, -old)
            return deleted

    def keys(self) -> list[str]:
        self.scans += 1
        return [k[len(_ENTRY) :] for k in self._cache.iterkeys() if isinstance(k, str) and k.startswith(_ENTRY)]

    def total_bytes(self) -> int:
        """Sum of the entries' sizes: the running counter (one read); one scan if it was never kept."""
        value = self._cache.get(_COUNTER + _BYTES, default=None, retry=True)
        if isinstance(value, int) and value >= 0:
            return value
        return self.recount_bytes()

    def recount_bytes(self) -> int:
        """Recompute the running total from the entries (a full scan) and store it."""
        with self._cache.transact(retry=True):
            total = sum(e.size for e in self.entries())
            self._cache.set(_COUNTER + _BYTES, total, retry=True)
        return total

    def entries(self) -> Iterator[CacheEntry]:
        for key in self.keys():
            entry = self.get(key)
            if entry is not None:
                yield entry

    # counters ------------------------------------------------------------------------------------
    def incr(self, name: str, delta: int = 1) -> None:
        self._cache.incr(_COUNTER + name, delta, default=0, retry=True)

    def counter(self, name: str) -> int:
        value = self._cache.get(_COUNTER + name, default=0, retry=True)
        return int(value) if isinstance(value, int) else 0

    # locks ---------------------------------------------------------------------------------------
    def lock(self, key: str, *, timeout: float, expire: float | None) -> BoundedLock:
        return BoundedLock(self._cache, _LOCK + key, timeout=timeout, expire=expire)

    def break_lock(self, key: str) -> bool:
        return bool(self._cache.delete(_LOCK + key, retry=True))

    def close(self) -> None:
        self._cache.close()
