"""A read-only view of a catalog at one snapshot (what ``ml.catalog_snapshot(snaptime)`` is bound to).

Every read goes to the wrapped adapter with ``snapshot=``; every write raises :class:`ReadOnlyCatalog`
before any request. The model is the one at the snapshot (the adapter's ``model_at``: ERMrest's
``/ermrest/catalog/N@SNAP/schema``, the embedded catalog's model history), read once: tables and columns
created since are absent from it, and reads name only what it has (:class:`UnknownTable` /
:class:`UnknownColumn` otherwise, before any request).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deriva_ml.catalog._common import check_columns, check_path_columns, find_table, where_items
from deriva_ml.catalog.port import Catalog, SnapshotModels, Where
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
        self._model: CatalogModel | None = None

    def __repr__(self) -> str:
        return f"SnapshotCatalog({self.inner!r}, {self.snapshot_id!r})"

    def _refuse(self, what: str) -> ReadOnlyCatalog:
        return ReadOnlyCatalog(
            f"{what}: this handle is bound to catalog snapshot {self.snapshot_id} and is read-only; "
            "write through the handle it came from"
        )

    def model(self, *, refresh: bool = False) -> CatalogModel:
        """The model at the snapshot (read once: it never changes, so ``refresh`` has nothing to do)."""
        if self._model is None:
            self._model = self._inner_model_at(self.snapshot_id)
        return self._model

    def _inner_model_at(self, snapshot: str) -> CatalogModel:
        if not isinstance(self.inner, SnapshotModels):
            raise CatalogError(
                f"{self.inner!r} cannot give its model at snapshot {snapshot} (no model_at); "
                "a snapshot handle needs a catalog that can"
            )
        return self.inner.model_at(snapshot)

    def model_at(self, snapshot: str) -> CatalogModel:
        """The model at another snapshot (a snapshot handle opened from this one)."""
        return self.model() if str(snapshot) == self.snapshot_id else self._inner_model_at(str(snapshot))

    def _ours(self, snapshot: str | None) -> bool:
        """Whether a read is at this handle's snapshot (then it is checked against the model at it)."""
        return not snapshot or str(snapshot) == self.snapshot_id

    def _table(self, schema: str, table: str, names: Sequence[str] = ()) -> TableDef:
        t = find_table(self.model(), schema, table)
        check_columns(t, names)
        return t

    def apply(self, batch: Batch) -> BatchResult:
        if not batch.effects:
            return BatchResult()
        e = batch.effects[0]
        raise self._refuse(f"{type(e).__name__.lower()} on {e.schema}:{e.table}")

    def create_tables(self, tables: Sequence[TableDef]) -> None:
        raise self._refuse("create_tables")

    def query(self, schema: str, table: str, where: Where | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        if self._ours(kwargs.get("snapshot")):
            names = [*(kwargs.get("columns") or ()), *(c for c, _, _ in where_items(where))]
            self._table(schema, table, [*names, *kwargs.get("order_by", ())])
        kwargs["snapshot"] = kwargs.get("snapshot") or self.snapshot_id
        return self.inner.query(schema, table, where, **kwargs)

    def query_linked(self, schema: str, table: str, where: Where | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        if self._ours(kwargs.get("snapshot")):
            self._table(schema, table, [kwargs["via"], *(c for c, _, _ in where_items(where))])
            target = [kwargs.get("target_column", "RID"), *(kwargs.get("columns") or ())]
            self._table(kwargs["target_schema"], kwargs["target_table"], target)
        kwargs["snapshot"] = kwargs.get("snapshot") or self.snapshot_id
        return self.inner.query_linked(schema, table, where, **kwargs)

    def _check_path(self, query: PathQuery, snapshot: str | None) -> None:
        if self._ours(snapshot):
            tables = [self._table(s.schema, s.table) for s in query.steps]
            check_path_columns(query, tables)
            check_columns(tables[-1], query.columns or ())

    def select_path(self, query: PathQuery, *, snapshot: str | None = None) -> list[dict[str, Any]]:
        from deriva_ml.data._query import path_catalog

        self._check_path(query, snapshot)
        return path_catalog(self.inner).select_path(query, snapshot=snapshot or self.snapshot_id)

    def count_path(self, query: PathQuery, *, snapshot: str | None = None) -> int:
        from deriva_ml.data._query import path_catalog

        self._check_path(query, snapshot)
        return path_catalog(self.inner).count_path(query, snapshot=snapshot or self.snapshot_id)

    def resolve_rid(self, rid: RID) -> tuple[str, str]:
        base, snap = split_snapshot(rid)
        found = self.inner.resolve_rid(RID(f"{base}@{snap or self.snapshot_id}"))
        return found

    def snapshot(self) -> str:
        return self.snapshot_id

    def close(self) -> None:
        """Nothing to release: the wrapped catalog belongs to the handle this one came from."""
