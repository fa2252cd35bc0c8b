"""The ports one ``DerivaML`` handle works through, gathered in one frozen value.

Built only by the facade (``deriva_ml._ml.DerivaML``); datasets, executions and the services take a
:class:`Ports` (and the :class:`~deriva_ml.services.schema.SchemaService`), never the facade. Nothing here
does I/O on construction: the asset cache opens on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from deriva_ml.catalog.port import Catalog
from deriva_ml.store.port import ObjectStore

if TYPE_CHECKING:
    from deriva_ml.cache import AssetCache


def utcnow() -> datetime:
    """The default clock of a handle (aware UTC). Code that sees it may read the system time directly."""
    from datetime import UTC

    return datetime.now(UTC)


#: ``DerivaML(LOCAL_HOST, name)`` selects the embedded catalog.
LOCAL_HOST = "local"


@attrs.frozen
class Directories:
    """Where a handle keeps its files: ``home`` (``$DERIVA_ML_HOME``), execution working directories,
    the asset/bag cache and, when known, the user's project root (for ``uv.lock``)."""

    home: Path
    working_dir: Path
    cache_dir: Path
    project_root: Path | None = None


@attrs.frozen
class HostIdentity:
    """Which catalog a handle is bound to: ``host_name`` (``"local"`` for the embedded catalog) and id."""

    host_name: str
    catalog_id: str

    @property
    def embedded(self) -> bool:
        return self.host_name == LOCAL_HOST


class LazyCache:
    """Opens the :class:`~deriva_ml.cache.AssetCache` for ``cache_dir`` on first use (thread-safe)."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self._cache: AssetCache | None = None
        self._lock = threading.Lock()

    def get(self) -> AssetCache:
        with self._lock:
            if self._cache is None:
                from deriva_ml.cache import AssetCache

                self._cache = AssetCache(self.cache_dir)
            return self._cache

    @property
    def opened(self) -> bool:
        return self._cache is not None

    def close(self) -> None:
        with self._lock:
            if self._cache is not None:
                self._cache.close()
                self._cache = None


@attrs.frozen
class Ports:
    """The catalog, the object store, the lazily opened asset cache, the clock, the directories and the
    host identity of one handle. Frozen: swapping a port means building a new ``Ports`` (``attrs.evolve``)."""

    catalog: Catalog
    store: ObjectStore
    lazy_cache: LazyCache
    clock: Callable[[], datetime]
    dirs: Directories
    host: HostIdentity
    #: Files uploaded in parallel by an execution's upload (network- and fsync-bound work).
    upload_workers: int = 4
    #: Handle-level logger (structlog-bound or stdlib); ``Any`` to keep structlog out of the import.
    log: Any = None

    @property
    def cache(self) -> AssetCache:
        return self.lazy_cache.get()

    def now(self) -> datetime:
        return self.clock()
