"""Pure decisions of the asset cache: names, keys, freshness, what to evict.

Nothing here touches the file system, the clock or the index; time and file status are parameters.
The shell (:mod:`deriva_ml.cache._asset_cache`) gathers them, calls these functions and applies the
result.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import attrs

from deriva_ml.core.convert import converter
from deriva_ml.core.errors import ConfigurationError, InvalidFileName, ValidationError
from deriva_ml.core.rid import is_rid, parse_rid
from deriva_ml.store import names as store_names

SECONDS_PER_DAY = 86_400.0

#: File names longer than this (in UTF-8 bytes) do not fit most file systems' 255-byte limit.
MAX_FILENAME_BYTES = 255

_MD5 = re.compile(r"[0-9a-fA-F]{32}")


@attrs.frozen
class CacheEntry:
    """One cached asset as the index records it.

    ``path`` is relative to the cache directory (POSIX separators) so that a cache directory can be
    moved as a whole. ``size`` and ``mtime_ns`` are the file's status when its bytes were last
    verified; ``last_used`` and ``created`` are seconds since the epoch.
    """

    rid: str
    md5: str
    filename: str
    path: str
    size: int
    mtime_ns: int
    last_used: float
    created: float

    @property
    def key(self) -> str:
        return entry_key(self.rid, self.md5)

    @property
    def dirname(self) -> str:
        return entry_dirname(self.rid, self.md5)


def entry_to_json(entry: CacheEntry) -> dict[str, object]:
    """The JSON-able form stored in the index (the core's converter: cattrs' generated hooks)."""
    result: dict[str, object] = converter().unstructure(entry)
    return result


def entry_from_json(data: object) -> CacheEntry:
    """Parse an index value; raise :class:`ConfigurationError` naming what is wrong."""
    try:
        entry: CacheEntry = converter().structure(data, CacheEntry)
    except Exception as exc:  # cattrs raises ClassValidationError / KeyError / TypeError
        raise ConfigurationError(f"malformed asset-cache index entry {data!r}: {exc}") from exc
    return entry


def normalize_md5(md5: str) -> str:
    """Lower-case hex MD5; raise :class:`ValidationError` for anything else."""
    if not isinstance(md5, str) or not _MD5.fullmatch(md5):
        raise ValidationError(f"md5={md5!r} is not an MD5 digest: expected 32 hexadecimal characters")
    return md5.lower()


def validate_rid(rid: str) -> str:
    """Return ``rid`` if it is an ERMrest RID (hence safe in a directory name); raise ``InvalidRID``."""
    return str(parse_rid(rid))


def validate_filename(filename: str) -> str:
    """Return ``filename`` if it can be one path component; raise :class:`InvalidFileName`.

    Spaces, several dots, no extension and non-ASCII are all fine (``my model.tar.gz``, ``README``,
    ``données.csv``); the object store's rules apply (no ``/``, ``\\``, NUL, drive prefix; not ``''``,
    ``.``, ``..``), and names over 255 UTF-8 bytes are refused too.
    """
    filename = store_names.validate_filename(filename)  # the store's rules, so both agree
    if len(filename.encode("utf-8", "surrogateescape")) > MAX_FILENAME_BYTES:
        raise InvalidFileName(f"filename={filename!r} is longer than {MAX_FILENAME_BYTES} bytes in UTF-8")
    return filename


def entry_key(rid: str, md5: str) -> str:
    """The index key of an asset: ``"{rid}:{md5}"``. A new MD5 in the catalog is a new key."""
    return f"{rid}:{md5}"


def entry_dirname(rid: str, md5: str) -> str:
    """The directory holding the asset under ``cache_dir/assets/``: ``"{rid}_{md5}"``."""
    return f"{rid}_{md5}"


def key_from_dirname(dirname: str) -> str | None:
    """Inverse of :func:`entry_dirname`, or ``None`` when ``dirname`` is not one of ours."""
    rid, sep, md5 = dirname.rpartition("_")
    if not sep or not is_rid(rid) or not _MD5.fullmatch(md5) or md5 != md5.lower():
        return None
    return entry_key(rid, md5)


def stat_is_fresh(entry: CacheEntry, size: int, mtime_ns: int) -> bool:
    """A hit needs only this: the file's size and mtime are what they were when last verified."""
    return entry.size == size and entry.mtime_ns == mtime_ns


def needs_touch(last_used: float, now: float, interval: float) -> bool:
    """Whether to rewrite ``last_used`` (at most once per ``interval`` seconds, to spare writes)."""
    return now - last_used >= interval


def select_expired(entries: Iterable[CacheEntry], older_than_days: float | None, now: float) -> tuple[str, ...]:
    """Keys to remove for ``clear(older_than_days)``: all when ``None``, else those unused for longer.

    An entry is old when ``last_used < now - older_than_days * 86400``.
    """
    if older_than_days is None:
        return tuple(sorted(e.key for e in entries))
    if older_than_days < 0:
        raise ValidationError(f"older_than_days={older_than_days!r} must be >= 0 or None")
    cutoff = now - older_than_days * SECONDS_PER_DAY
    return tuple(sorted(e.key for e in entries if e.last_used < cutoff))


def select_lru_evictions(
    entries: Iterable[CacheEntry], size_limit: int | None, protect: Iterable[str] = ()
) -> tuple[str, ...]:
    """Keys to evict, least recently used first, until the cache fits in ``size_limit`` bytes.

    Entries whose key is in ``protect`` (the one just added) are never chosen, even if the cache
    then stays over the limit. ``None`` means no limit.
    """
    if size_limit is None:
        return ()
    unique: Mapping[str, CacheEntry] = {e.key: e for e in entries}
    total = sum(e.size for e in unique.values())
    if total <= size_limit:
        return ()
    protected = set(protect)
    candidates = sorted((e for e in unique.values() if e.key not in protected), key=lambda e: (e.last_used, e.key))
    chosen: list[str] = []
    for entry in candidates:
        if total <= size_limit:
            break
        chosen.append(entry.key)
        total -= entry.size
    return tuple(chosen)


__all__ = [
    "MAX_FILENAME_BYTES",
    "SECONDS_PER_DAY",
    "CacheEntry",
    "entry_dirname",
    "entry_from_json",
    "entry_key",
    "entry_to_json",
    "key_from_dirname",
    "needs_touch",
    "normalize_md5",
    "select_expired",
    "select_lru_evictions",
    "stat_is_fresh",
    "validate_filename",
    "validate_rid",
]
