"""The typed, immutable query builder over a catalog's tables (``ml.query("Subject")``).

Every method returns a new :class:`Query`; nothing is read until :meth:`Query.fetch`, iteration,
:meth:`Query.pages` or :meth:`Query.count`. The query is a :class:`~deriva_ml.core.filters.PathQuery`
handed to the catalog adapter, which translates it (SQL on the embedded catalog, one ERMrest URL live).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from deriva_ml.catalog.port import PathCatalog as PathCatalog
from deriva_ml.core.errors import DerivaMLException, ValidationError
from deriva_ml.core.filters import And, PathQuery, Step, as_filter
from deriva_ml.core.schema_defs import CatalogModel, TableDef

#: Rows per request when iterating a query (``for row in q``) or paging without a size.
PAGE_SIZE = 1000


def path_catalog(catalog: Any) -> PathCatalog:
    if not isinstance(catalog, PathCatalog):
        raise DerivaMLException(
            f"{type(catalog).__name__} cannot run path queries (select_path/count_path); "
            "use the embedded (SQLiteCatalog) or ERMrest (ErmrestCatalog) adapter"
        )
    return catalog


def find_link(model: CatalogModel, src: TableDef, dst: TableDef) -> tuple[str, str]:
    """``(via, target_column)`` joining ``src`` rows to ``dst`` rows by a foreign key in either direction:
    ``src`` referencing ``dst`` (via = the FK column, target = the key column) or ``dst`` referencing ``src``
    (via = the key column, target = the FK column). Exactly one single-column foreign key must qualify."""
    found: list[tuple[str, str]] = []
    for fk in src.foreign_keys:
        if (fk.pk_schema, fk.pk_table) == (dst.schema, dst.name) and len(fk.columns) == 1:
            found.append((fk.columns[0], fk.pk_columns[0]))
    for fk in dst.foreign_keys:
        if (fk.pk_schema, fk.pk_table) == (src.schema, src.name) and len(fk.columns) == 1:
            found.append((fk.pk_columns[0], fk.columns[0]))
    found = list(dict.fromkeys(found))
    if not found:
        linked = sorted(
            {f"{fk.pk_schema}:{fk.pk_table}" for fk in src.foreign_keys}
            | {
                t.qualified
                for t in model.tables
                for fk in t.foreign_keys
                if (fk.pk_schema, fk.pk_table) == (src.schema, src.name)
            }
        )
        raise ValidationError(
            f"no foreign key links {src.qualified} and {dst.qualified}; tables linked to {src.qualified}: "
            f"{', '.join(linked) or '(none)'}"
        )
    if len(found) > 1:
        raise ValidationError(
            f"{src.qualified} and {dst.qualified} are linked by several foreign keys {found}; "
            "pass via=<column of the current table> and on=<column of the linked table>"
        )
    return found[0]


@attrs.frozen(eq=False)
class Query:
    """Rows of a table, filtered, projected, followed through foreign keys, limited and paged.

    ``where(f)`` adds a condition on the current (last) table: a filter built with
    :func:`~deriva_ml.core.filters.col` or a ``{column: value-or-list}`` dict. ``linked(table)`` moves to
    the rows of ``table`` linked to the current rows by a foreign key (either direction; each row once).
    ``select(*columns)`` projects; ``limit(n)``; ``page(after=RID)`` starts after a RID. Results are in RID
    order. ``fetch()`` (one request), ``count()`` (one request), ``first()``, ``pages(size)`` and
    iteration (one request per page: a 10,000-row table in pages of 1,000 is 10 requests).
    """

    catalog: Any
    model: CatalogModel
    steps: tuple[Step, ...]
    columns: tuple[str, ...] | None = None
    after: str | None = None
    max_rows: int | None = None
    snapshot: str | None = None
    _resolve: Any = None  # name -> TableDef (the schema service's lookup)

    @property
    def table(self) -> TableDef:
        s = self.steps[-1]
        t = self.model.table(s.schema, s.table)
        assert t is not None
        return t

    def where(self, *filters: Any, **equals: Any) -> Query:
        from deriva_ml.catalog._common import check_columns
        from deriva_ml.core.filters import columns_of

        parts = [as_filter(f) for f in filters]
        if equals:
            parts.append(as_filter(equals))
        parts = [p for p in parts if p is not None]
        if not parts:
            return self
        last = self.steps[-1]
        if last.filter is not None:
            parts.insert(0, last.filter)
        new = parts[0] if len(parts) == 1 else And(tuple(parts))
        check_columns(self.table, columns_of(new))
        return attrs.evolve(self, steps=(*self.steps[:-1], attrs.evolve(last, filter=new)))

    def linked(self, table: str | TableDef, *, via: str | None = None, on: str | None = None) -> Query:
        from deriva_ml.catalog._common import check_columns

        dst = table if isinstance(table, TableDef) else self._resolve(table)
        if (via is None) != (on is None):
            raise ValidationError("pass both via= (a column of the current table) and on= (one of the linked table)")
        if via is None:
            via, on = find_link(self.model, self.table, dst)
        check_columns(self.table, [via])
        check_columns(dst, [on or ""])
        step = Step(dst.schema, dst.name, None, via, on)
        return attrs.evolve(self, steps=(*self.steps, step), columns=None)

    def select(self, *columns: str | Sequence[str]) -> Query:
        from deriva_ml.catalog._common import check_columns

        flat: list[str] = []
        for c in columns:
            flat.extend([c] if isinstance(c, str) else list(c))
        check_columns(self.table, flat)
        return attrs.evolve(self, columns=tuple(dict.fromkeys(flat)) or None)

    def limit(self, n: int | None) -> Query:
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
            raise ValidationError(f"limit({n!r}): expected a non-negative integer or None")
        return attrs.evolve(self, max_rows=n)

    def page(self, after: str | None) -> Query:
        """Rows with RID after ``after`` (the last RID of the previous page); None starts from the first."""
        return attrs.evolve(self, after=None if after is None else str(after))

    def at(self, snapshot: str | None) -> Query:
        """The same query read at a catalog snapshot."""
        return attrs.evolve(self, snapshot=snapshot)

    def path(self, *, limit: int | None = -1, after: str | None = "") -> PathQuery:
        return PathQuery(
            self.steps,
            columns=self.columns,
            after=self.after if after == "" else after,
            limit=self.max_rows if limit == -1 else limit,
        )

    def fetch(self) -> list[dict[str, Any]]:
        """Every row (up to ``limit``), in one request."""
        return path_catalog(self.catalog).select_path(self.path(), snapshot=self.snapshot)

    def first(self) -> dict[str, Any] | None:
        rows = path_catalog(self.catalog).select_path(self.path(limit=1), snapshot=self.snapshot)
        return rows[0] if rows else None

    def count(self) -> int:
        """How many rows the query selects (ignoring ``limit``; one request)."""
        return path_catalog(self.catalog).count_path(self.path(limit=None), snapshot=self.snapshot)

    def pages(self, size: int = PAGE_SIZE) -> Iterator[list[dict[str, Any]]]:
        """The rows in pages of ``size`` (RID order, keyed by RID): ceil(n/size) requests for n rows (one for
        none). Each request asks for one row more than it keeps, to know whether another page exists."""
        if not isinstance(size, int) or size < 1:
            raise ValidationError(f"page size {size!r} must be a positive integer")
        cat = path_catalog(self.catalog)
        remaining = self.max_rows
        after = self.after
        need_rid = self.columns is not None and "RID" not in self.columns
        columns = (*self.columns, "RID") if need_rid and self.columns else self.columns
        while remaining is None or remaining > 0:
            want = size if remaining is None else min(size, remaining)
            q = PathQuery(self.steps, columns=columns, after=after, limit=want + 1)
            rows = cat.select_path(q, snapshot=self.snapshot)
            more = len(rows) > want
            rows = rows[:want]
            if rows:
                after = str(rows[-1]["RID"])
                if need_rid:
                    rows = [{k: v for k, v in r.items() if k != "RID"} for r in rows]
                yield rows
            if remaining is not None:
                remaining -= len(rows)
            if not more:
                return

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for page in self.pages():
            yield from page

    def __repr__(self) -> str:
        path = " -> ".join(f"{s.schema}:{s.table}" for s in self.steps)
        return f"Query({path}, columns={self.columns}, limit={self.max_rows}, after={self.after})"
