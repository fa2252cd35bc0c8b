"""Integrity of the asset cache on disk: re-hash every entry (``verify()``), remove strays, and re-register
the cached files after a corrupt index was replaced.

Each entry is checked under its lock, so a concurrent fetch of the same asset waits. Entry bookkeeping
(paths, locks, eviction, re-stat) is the cache's own (:class:`deriva_ml.cache.AssetCache`).
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING

from deriva_ml._log import get_logger as _get_logger
from deriva_ml.cache._files import md5_file, remove_tree
from deriva_ml.cache._reports import BadEntry, VerifyReport
from deriva_ml.cache.policy import key_from_dirname, stat_is_fresh, validate_filename
from deriva_ml.core.errors import ValidationError

if TYPE_CHECKING:
    from deriva_ml.cache._asset_cache import AssetCache

#: Temporary download directories older than this are removed by ``verify()``.
STALE_TMP_SECONDS = 24 * 3600.0


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def verify_entries(cache: AssetCache) -> VerifyReport:
    """Re-hash every entry; evict those whose bytes are missing or wrong; remove strays.

    Backs ``ml.verify_cache()``. Each entry is checked under its lock, so a concurrent fetch of
    the same asset waits. Directories under ``assets/`` that no entry owns and temporary
    downloads older than a day are removed too.
    """
    log = _get_logger(__name__)
    ok: list[str] = []
    bad: list[BadEntry] = []
    checked = 0
    hashed = 0
    for key in sorted(cache._index.keys()):
        with cache._lock(key):
            entry = cache._index.get(key)
            if entry is None:
                continue
            checked += 1
            path = cache._path(entry)
            reason: str | None = None
            try:
                st = os.stat(path)
                actual = md5_file(path)
                hashed += st.st_size
                if actual != entry.md5:
                    reason = f"MD5 is {actual}, expected {entry.md5}"
            except FileNotFoundError:
                reason = "file is missing"
            except OSError as exc:
                reason = f"unreadable: {exc}"
            if reason is None:
                if not stat_is_fresh(entry, st.st_size, st.st_mtime_ns):
                    cache._restat(entry, st)
                ok.append(key)
            else:
                bad.append(BadEntry(key=key, path=str(path), reason=reason))
                cache._evict(entry, reason=reason, corrupt=True)
    orphans = _remove_orphans(cache)
    cache._index.recount_bytes()  # the running total, from the entries that survived
    report = VerifyReport(
        checked=checked,
        bytes_hashed=hashed,
        ok=tuple(ok),
        evicted=tuple(bad),
        orphans_removed=tuple(orphans),
    )
    log.info(
        "cache.verified",
        checked=checked,
        bytes_hashed=hashed,
        evicted=len(bad),
        orphans_removed=len(orphans),
    )
    return report


def _remove_orphans(cache: AssetCache) -> list[str]:
    """Remove asset directories no entry owns and stale temporary downloads."""
    removed: list[str] = []
    for child in sorted(cache._assets.iterdir()):
        key = key_from_dirname(child.name)
        if key is None:
            remove_tree(child)
            removed.append(str(child))
            continue
        with cache._lock(key):
            entry = cache._index.get(key)
            if entry is None or entry.dirname != child.name:
                remove_tree(child)
                removed.append(str(child))
                continue
            for stray in child.iterdir():  # files beside the recorded one
                if stray.name != entry.filename:
                    remove_tree(stray)
                    removed.append(str(stray))
    now = time.time()  # file mtimes are wall-clock, whatever the injected clock says
    for child in cache._tmp.iterdir():
        try:
            age = now - child.stat().st_mtime
        except FileNotFoundError:
            continue
        if age > STALE_TMP_SECONDS:
            remove_tree(child)
            removed.append(str(child))
    return removed


def rebuild_index(cache: AssetCache) -> None:
    """Re-register the cached files after the index was found corrupt and recreated.

    Each ``assets/{rid}_{md5}/<file>`` whose bytes hash to its ``md5`` gets its entry back; anything
    else is removed (fetched again when needed).
    """
    log = _get_logger(__name__)
    kept = dropped = 0
    for child in sorted(cache._assets.iterdir()):
        key = key_from_dirname(child.name)
        files = [] if key is None or not child.is_dir() or child.is_symlink() else list(child.iterdir())
        entry = None
        if key is not None and len(files) == 1 and _is_regular(files[0]):
            rid, _, md5 = key.partition(":")
            try:
                filename = validate_filename(files[0].name)
                good = filename == files[0].name and md5_file(files[0]) == md5
            except (OSError, ValidationError):
                good = False
            if good:
                entry = cache._new_entry(rid, md5, filename, child.name, files[0])
        if entry is None:
            remove_tree(child)
            dropped += 1
        else:
            cache._index.put(entry)
            kept += 1
    log.warning("cache.index_rebuilt", cache_dir=str(cache.cache_dir), entries=kept, removed=dropped)
