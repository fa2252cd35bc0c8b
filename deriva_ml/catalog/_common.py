"""Checks shared by the catalog adapters: names against the model, where-clauses, system columns."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from deriva_ml.core.errors import UnknownColumn, UnknownTable, ValidationError
from deriva_ml.core.filters import PathQuery, columns_of
from deriva_ml.core.schema_defs import SYSTEM_COLUMNS, CatalogModel, TableDef

#: Column types whose values are stored as JSON (text on SQLite).
JSON_TYPES = frozenset({"json", "jsonb", "text[]"})


def find_table(model: CatalogModel, schema: str, table: str) -> TableDef:
    """The table ``schema:table`` or :class:`UnknownTable` listing the known ones."""
    found = model.table(schema, table)
    if found is None:
        raise UnknownTable(f"{schema}:{table}", (t.qualified for t in model.tables))
    return found


def check_columns(table: TableDef, names: Iterable[str]) -> None:
    """Raise :class:`UnknownColumn` for the first name ``table`` lacks."""
    known = table.column_names
    for name in names:
        if name not in known:
            raise UnknownColumn(table.qualified, name, known)


def check_path_columns(query: PathQuery, tables: Sequence[TableDef]) -> None:
    """The columns a path query names exist: each step's filter columns in its table, the link columns
    ``via`` (in the previous step's table) and ``target_column`` (in the step's table)."""
    for i, (step, t) in enumerate(zip(query.steps, tables, strict=True)):
        check_columns(t, columns_of(step.filter))
        if i:
            check_columns(tables[i - 1], [step.via or ""])
            check_columns(t, [step.target_column or ""])


def check_writable(table: TableDef, names: Iterable[str], what: str) -> None:
    """Known columns only, and no system columns (the catalog sets them)."""
    names = list(names)
    check_columns(table, names)
    system = [n for n in names if n in SYSTEM_COLUMNS]
    if system:
        raise ValidationError(
            f"{what} of {table.qualified}: {system} are system columns set by the catalog, not by the caller"
        )


def where_items(where: Any) -> list[tuple[str, Any, bool]]:
    """``(column, value-or-values, is_many)`` for each condition of a ``where`` mapping."""
    out: list[tuple[str, Any, bool]] = []
    for col, value in (where or {}).items():
        if isinstance(value, list | tuple | set | frozenset):
            out.append((col, list(value), True))
        else:
            out.append((col, value, False))
    return out
