"""Reading rows page by page, in RID order: memory bounded by the page size, not by the rows.

Both adapters answer path queries (``select_path``) with RID keyset paging: ERMrest as
``/entity/<path>@sort(RID)@after(<last RID>)?limit=N`` (ERMrest's paging: the ``@after`` key names the
last row of the previous page, in the ``@sort`` order), the embedded catalog as ``... WHERE RID > ?
ORDER BY RID LIMIT ?``. :func:`query_pages` (one table) and :func:`linked_pages` (a table reached through
the ``via`` column of the filtered rows of another, like ``Catalog.query_linked``) yield the rows as lists
of at most ``page_size`` rows; requests: one per page (a last, short or empty page ends the reading),
times the parts the ERMrest adapter splits a URL over its budget into. Together the pages are the rows
``query``/``query_linked`` return, in the same (RID) order. A catalog without path queries (a plain
delegate of the :class:`~deriva_ml.catalog.port.Catalog` port) answers in one page: ``query`` or
``query_linked`` itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from deriva_ml.catalog.port import PathCatalog, Where
from deriva_ml.core.errors import ValidationError
from deriva_ml.core.filters import PathQuery, Step, as_filter

#: Rows per page unless the caller says otherwise.
PAGE_SIZE = 1000


def where_filter(where: Where | None) -> Any:
    """The filter record of a ``where`` mapping (list/tuple: any of the values; None: NULL; else equality);
    None for no condition (``core.filters.as_filter`` of a non-empty mapping)."""
    return as_filter(where) if where else None


def _pages(
    catalog: Any, steps: Sequence[Step], columns: Sequence[str] | None, page_size: int, snapshot: str | None
) -> Iterator[list[dict[str, Any]]]:
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
        raise ValidationError(f"page_size={page_size!r} must be a positive integer")
    select = catalog.select_path
    cols = None if columns is None else tuple(dict.fromkeys([*columns, "RID"]))
    drop_rid = columns is not None and "RID" not in columns
    after: str | None = None
    while True:
        rows = select(PathQuery(tuple(steps), columns=cols, after=after, limit=page_size), snapshot=snapshot)
        if not rows:
            return
        last = str(rows[-1]["RID"])
        full = len(rows) >= page_size
        if drop_rid:
            rows = [{c: r.get(c) for c in columns or ()} for r in rows]
        yield rows
        if not full:
            return
        after = last


def _one(read: Callable[[], list[dict[str, Any]]]) -> Iterator[list[dict[str, Any]]]:
    """The rows of ``read()`` as one page, read when the first page is asked for."""
    rows = read()
    if rows:
        yield rows


def query_pages(
    catalog: Any,
    schema: str,
    table: str,
    where: Where | None = None,
    *,
    columns: Sequence[str] | None = None,
    page_size: int = PAGE_SIZE,
    snapshot: str | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """The rows ``catalog.query(schema, table, where, columns=columns, snapshot=snapshot)`` returns (in RID
    order), as pages of at most ``page_size`` rows, each read when the previous one has been consumed."""
    if not isinstance(catalog, PathCatalog):
        return _one(lambda: catalog.query(schema, table, where, columns=columns, snapshot=snapshot))
    return _pages(catalog, [Step(schema, table, where_filter(where))], columns, page_size, snapshot)


def linked_pages(
    catalog: Any,
    schema: str,
    table: str,
    where: Where | None = None,
    *,
    via: str,
    target_schema: str,
    target_table: str,
    target_column: str = "RID",
    columns: Sequence[str] | None = None,
    page_size: int = PAGE_SIZE,
    snapshot: str | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """The rows ``catalog.query_linked(...)`` returns with the same arguments (each target row once, in RID
    order), as pages of at most ``page_size`` rows, each read when the previous one has been consumed."""
    if not isinstance(catalog, PathCatalog):
        return _one(
            lambda: catalog.query_linked(
                schema,
                table,
                where,
                via=via,
                target_schema=target_schema,
                target_table=target_table,
                target_column=target_column,
                columns=columns,
                snapshot=snapshot,
            )
        )
    steps = [
        Step(schema, table, where_filter(where)),
        Step(target_schema, target_table, via=via, target_column=target_column),
    ]
    return _pages(catalog, steps, columns, page_size, snapshot)


__all__ = ["PAGE_SIZE", "linked_pages", "query_pages", "where_filter"]
