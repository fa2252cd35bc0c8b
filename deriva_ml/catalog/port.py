"""The catalog port: the narrow set of operations the rest of deriva_ml needs from a catalog.

Two real implementations share one conformance suite (``tests/catalog/``):

- :class:`deriva_ml.catalog.sqlite.SQLiteCatalog` — the embedded default (a SQLite file);
- :class:`deriva_ml.catalog.ermrest.ErmrestCatalog` — a live ERMrest catalog through deriva-py.

Every catalog answers :class:`LinkedQueries` (a member table joined through an association in one request:
datasets, bags, provenance and snapshots rely on it). Optional capabilities are small protocols of their
own, checked with ``isinstance``: :class:`Journaled` (the embedded catalog, opened with ``journal=True``,
journals every commit in the same transaction: the basis of ``deriva_ml.sync``), :class:`SnapshotModels`
(the model at a snapshot), :class:`PathCatalog` (path queries: the query builder and paged reads; both
adapters have it). Nothing above this port imports ``sqlite3`` or ``deriva``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from deriva_ml.core.definitions import ML_SCHEMA as ML_SCHEMA  # defined once, in the core
from deriva_ml.core.effects import Batch, BatchResult, Value
from deriva_ml.core.filters import PathQuery
from deriva_ml.core.rid import RID
from deriva_ml.core.schema_defs import CatalogModel, TableDef

#: ``where`` maps a column to a value (equality) or to a list/tuple of values (any of them).
Where = Mapping[str, Value | Sequence[Value]]


@runtime_checkable
class LinkedQueries(Protocol):
    """Optional: rows of a target table referenced by the matching rows of a source table, in one request."""

    def query_linked(
        self,
        schema: str,
        table: str,
        where: Where | None = None,
        *,
        via: str,
        target_schema: str,
        target_table: str,
        target_column: str = "RID",
        columns: Sequence[str] | None = None,
        limit: int | None = None,
        snapshot: str | None = None,
    ) -> list[dict[str, Any]]:
        """The rows of ``target_schema:target_table`` referenced by the rows of ``schema:table`` that match
        ``where``: a target row is returned when its ``target_column`` equals the ``via`` column of at least
        one matching source row. One request however many rows match.

        Each target row appears once (in RID order), however many source rows reference it; source rows
        whose ``via`` is NULL reference nothing. ``columns`` projects the target rows; ``limit`` caps the
        number of target rows (after de-duplication; 0 or less: none, without a request). With ``snapshot``, both tables are read as they were
        at that snapshot. ``via`` need not be a declared foreign key. Typical use, the members of a dataset
        in one request: ``query_linked(S, "Dataset_Image", {"Dataset": rid}, via="Image", target_schema=S,
        target_table="Image")``. Raises ``UnknownTable``/``UnknownColumn`` like :meth:`query`.
        """
        ...


@runtime_checkable
class Catalog(LinkedQueries, Protocol):
    """A catalog: a model, batched writes, and small indexed queries."""

    def model(self, *, refresh: bool = False) -> CatalogModel:
        """The catalog's tables. Fetched once and kept; ``refresh=True`` re-reads it (after DDL)."""
        ...

    def apply(self, batch: Batch) -> BatchResult:
        """Apply every effect of ``batch`` in order; all or nothing where the backend allows.

        Raises ``UnknownTable``/``UnknownColumn`` for names the model lacks, ``ConflictError`` for a
        duplicate key, ``ForeignKeyError`` for a reference to a missing row, ``CatalogBusy`` when the
        backend is locked (retryable). A failed batch on the embedded catalog leaves no partial rows.
        """
        ...

    def query(
        self,
        schema: str,
        table: str,
        where: Where | None = None,
        *,
        columns: Sequence[str] | None = None,
        order_by: Sequence[str] = (),
        limit: int | None = None,
        snapshot: str | None = None,
    ) -> list[dict[str, Any]]:
        """Rows of ``schema:table`` matching every ``where`` condition, as dicts (one request)."""
        ...

    def resolve_rid(self, rid: RID) -> tuple[str, str]:
        """``(schema, table)`` of the row with this RID, or ``RIDNotFound``."""
        ...

    def create_tables(self, tables: Sequence[TableDef]) -> None:
        """Create tables (and their schemas when missing) in one change; refreshes the model."""
        ...

    def snapshot(self) -> str:
        """An identifier of the catalog's current state that ``query(..., snapshot=...)`` accepts."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


@runtime_checkable
class Journaled(Protocol):
    """Optional: a catalog that journals every applied batch and DDL change in the transaction that commits
    it (the embedded catalog opened with ``journal=True``); :func:`deriva_ml.catalog.journal.read_journal`
    reads it and ``deriva_ml.sync`` replays it."""

    #: The catalog's file; what a reader of the journal keeps about it (e.g. sync state) lives beside it.
    path: Path

    def journal_lines(self, after: int = 0) -> list[str]:
        """Journal entries (JSON lines) with ``seq > after``, in order."""
        ...


@runtime_checkable
class SnapshotModels(Protocol):
    """Optional: the catalog model as it was at a snapshot (tables and columns created since absent, dropped
    ones present). Both real adapters answer it (ERMrest: ``GET /ermrest/catalog/N@SNAP/schema``)."""

    def model_at(self, snapshot: str) -> CatalogModel:
        """The model at ``snapshot``; an unknown snapshot raises a :class:`~deriva_ml.core.errors.CatalogError`."""
        ...


def create_missing_tables(catalog: Catalog, tables: Sequence[TableDef]) -> list[TableDef]:
    """Create those of ``tables`` the catalog lacks and return them; a table another process created
    meanwhile (a parallel sweep job, a second notebook) is taken as there, not as an error, so callers that
    mean "make sure it exists" stay idempotent across processes."""
    from deriva_ml.core.errors import ConflictError

    model = catalog.model()
    missing = [t for t in tables if model.table(t.schema, t.name) is None]
    if not missing:
        return []
    try:
        catalog.create_tables(missing)
    except ConflictError:
        model = catalog.model(refresh=True)
        still = [t for t in missing if model.table(t.schema, t.name) is None]
        if not still:
            return []
        if len(still) == len(missing):
            raise
        catalog.create_tables(still)  # some were made by the other process, these were not
        return still
    return missing


@runtime_checkable
class PathCatalog(Protocol):
    """Path queries (a chain of linked tables, filtered, sorted, paged after a key): the query builder and the
    paged reads of ``catalog.paging`` need them; both adapters have them."""

    def select_path(self, query: PathQuery, *, snapshot: str | None = None) -> list[dict[str, Any]]: ...

    def count_path(self, query: PathQuery, *, snapshot: str | None = None) -> int: ...
