"""What the asset cache reports: its statistics, and what ``verify()`` and ``clear()`` did (frozen records)."""

from __future__ import annotations

from pathlib import Path

import attrs


@attrs.frozen
class CacheStats:
    """What ``ml.cache_stats()`` reports. Counters are shared by every process using the cache."""

    cache_dir: Path
    entries: int
    bytes: int
    hits: int
    misses: int
    evictions: int
    corruptions: int
    size_limit: int | None


@attrs.frozen
class BadEntry:
    """An entry ``verify()`` evicted, and why."""

    key: str
    path: str
    reason: str


@attrs.frozen
class VerifyReport:
    """What ``verify()`` found: entries re-hashed, good ones, evicted ones, strays removed."""

    checked: int
    bytes_hashed: int
    ok: tuple[str, ...]
    evicted: tuple[BadEntry, ...]
    orphans_removed: tuple[str, ...]

    @property
    def clean(self) -> bool:
        return not self.evicted and not self.orphans_removed


@attrs.frozen
class ClearReport:
    """What ``clear()`` removed."""

    removed: tuple[str, ...]
    bytes_freed: int
    skipped_busy: tuple[str, ...] = ()
