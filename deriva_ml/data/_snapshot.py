"""A read-only view of a catalog at one snapshot (what ``ml.catalog_snapshot(snaptime)`` is bound to).

Every read goes to the wrapped adapter with ``snapshot=``; every write raises :class:`ReadOnlyCatalog`
before any request. The model is the wrapped adapter's (the current one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deriva_ml.catalog.port import Catalog, Where
from deriva_ml.core.effects import Batch, BatchResult
from deriva_ml.core.errors import CatalogError
from deriva_ml.core.filters import PathQuery
from deriva_ml.core.rid import RID, split_snapshot
from deriva_ml.core.schema_defs import CatalogModel, TableDef


class ReadOnlyCatalog(CatalogError, PermissionError):
    """A write to a catalog snapshot (snapshots are read-only)."""


class SnapshotCatalog:
    """``inner`` as it was at ``snapshot``; reads only. ``close()`` leaves ``inner`` open (it is not ours)."""

    def __init__(self, inner: Catalog, snapshot: str) -> None:
        self.inner = inner
        self.snapshot_id = str(snapshot)

    def __repr__(self) -> str:
        return f"SnapshotCatalog({self.inner!r}, {self.snapshot_id!r})"

    def _refuse(self, what: str) -> ReadOnlyCatalog:
        return ReadOnlyCatalog(
            f"{what}: this handle is bound to catalog snapshot {self.snapshot_id} and is read-only; "
            "write through the handle it came from"
        )

    def model(self, *, refresh: bool = False) -> CatalogModel:
        return self.inner.model(refresh=refresh)

    def apply(self, batch: Batch) -> BatchResult:
        if not batch.effects:
            return BatchResult()
        e = batch.effects[0]
        raise self._refuse(f"{type(e).__name__.lower()} on {e.schema}:{e.table}")

    def create_tables(self, tables: Sequence[TableDef]) -> None:
        raise self._refuse("create_tables")

    def query(self, schema: str, table: str, where: Where | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        kwargs["snapshot"] = kwargs.get("snapshot") or self.snapshot_id
        return self.inner.query(schema, table, where, **kwargs)

    def query_linked(self, schema: str, table: str, where: Where | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        kwargs["snapshot"] = kwargs.get("snapshot") or self.snapshot_id
        return self.inner.query_linked(schema, table, where, **kwargs)

    def select_path(self, query: PathQuery, *, snapshot: str | None = None) -> list[dict[str, Any]]:
        from deriva_ml.data._query import path_catalog

        return path_catalog(self.inner).select_path(query, snapshot=snapshot or self.snapshot_id)

    def count_path(self, query: PathQuery, *, snapshot: str | None = None) -> int:
        from deriva_ml.data._query import path_catalog

        return path_catalog(self.inner).count_path(query, snapshot=snapshot or self.snapshot_id)

    def resolve_rid(self, rid: RID) -> tuple[str, str]:
        base, snap = split_snapshot(rid)
        found = self.inner.resolve_rid(RID(f"{base}@{snap or self.snapshot_id}"))
        return found

    def snapshot(self) -> str:
        return self.snapshot_id

    def close(self) -> None:
        """Nothing to release: the wrapped catalog belongs to the handle this one came from."""
