"""The facade's asset calls: list, find, download assets, catalog files, manage the asset cache."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deriva_ml._facade._base import FacadeBase
from deriva_ml.core.execution_rows import record_from_row
from deriva_ml.core.records import ExecutionRecord


class AssetFacade(FacadeBase):
    """``DerivaML``'s calls on assets and the asset cache (``data._assets``, ``cache``)."""

    def cache_stats(self) -> Any:
        """Entries, bytes, hits and misses of the asset cache."""
        return self._ports.cache.stats()

    def clear_cache(self, older_than_days: float | None = None) -> Any:
        """Remove cached assets (all, or those unused for ``older_than_days``)."""
        return self._ports.cache.clear(older_than_days)

    def verify_cache(self) -> Any:
        """Re-hash every cached asset; corrupt entries are evicted and reported."""
        return self._ports.cache.verify()

    def list_assets(self, table: str) -> list[Any]:
        """Every asset of an asset table as :class:`~deriva_ml.data.Asset` records (3 requests)."""
        from deriva_ml.data import _assets

        return _assets.list_assets(self._ports, self._schema, table)

    def find_assets(self, table: str | None = None, **kwargs: Any) -> list[Any]:
        """Assets by table, asset_type, md5, filename (any combination)."""
        from deriva_ml.data import _assets

        return _assets.find_assets(self._ports, self._schema, table, **kwargs)

    def lookup_asset(self, rid: str) -> Any:
        from deriva_ml.data import _assets

        return _assets.lookup_asset(self._ports, self._schema, rid)

    def list_asset_executions(self, asset_rid: str, role: str | None = None) -> list[ExecutionRecord]:
        """Executions that produced (``role="Output"``) or read (``"Input"``) an asset; None: both."""
        from deriva_ml.data import _assets

        return [record_from_row(r) for r in _assets.asset_execution_rows(self._ports, self._schema, asset_rid, role)]

    def download_asset(self, asset_rid: str, dest: str | os.PathLike[str], *, cache: bool = True) -> Path:
        """The asset's file under ``dest`` (through the asset cache unless ``cache=False``), MD5 verified."""
        from deriva_ml.data import _assets

        return _assets.download_asset(self._ports, self._schema, asset_rid, Path(dest), cache=cache)

    def list_files(self, file_types: Sequence[str] | None = None) -> list[Any]:
        from deriva_ml.data import _assets

        return _assets.list_files(self._ports, self._schema, file_types)
