"""Catalog schema definitions as frozen records (no I/O).

These describe tables the way ERMrest does — columns with ERMrest type names, keys, foreign keys —
so that one definition can be applied to the embedded SQLite catalog and to a live ERMrest catalog.
``deriva_ml.catalog.schema`` builds the deriva-ml schema from them; the domain helpers
(``create_vocabulary``, ``create_table``, ``create_asset``) build user tables from them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

import attrs

from deriva_ml.core.errors import ValidationError

#: ERMrest column types deriva_ml uses.
COLUMN_TYPES = frozenset(
    {
        "text",
        "markdown",
        "longtext",
        "int2",
        "int4",
        "int8",
        "float4",
        "float8",
        "boolean",
        "date",
        "timestamp",
        "timestamptz",
        "json",
        "jsonb",
        "ermrest_rid",
        "ermrest_rcb",
        "ermrest_rmb",
        "ermrest_rct",
        "ermrest_rmt",
        "ermrest_uri",
        "ermrest_curie",
        "text[]",
    }
)

#: ERMrest's system columns, present on every table.
SYSTEM_COLUMNS: tuple[str, ...] = ("RID", "RCT", "RMT", "RCB", "RMB")

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_ -]*$")

TableKind = Literal["table", "vocabulary", "asset", "association"]


# Typed converters: ``converter=tuple`` makes mypy infer ``Iterable[_T_co]`` for the __init__ arguments.
def _names(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _columns(value: Iterable[ColumnDef]) -> tuple[ColumnDef, ...]:
    return tuple(value)


def _keys(value: Iterable[KeyDef]) -> tuple[KeyDef, ...]:
    return tuple(value)


def _fkeys(value: Iterable[ForeignKeyDef]) -> tuple[ForeignKeyDef, ...]:
    return tuple(value)


def _tables(value: Iterable[TableDef]) -> tuple[TableDef, ...]:
    return tuple(value)


def check_name(name: str, what: str) -> str:
    """Table, column and schema names: a letter or underscore, then letters, digits, ``_``, ``-``, space."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or len(name) > 63:
        raise ValidationError(
            f"{what} name {name!r} is not valid: start with a letter or '_', then letters, digits, '_', '-' "
            f"or spaces, at most 63 characters"
        )
    return name


@attrs.frozen
class ColumnDef:
    """One column: ERMrest type name, nullability, optional default and comment."""

    name: str
    type: str = "text"
    nullok: bool = True
    default: str | int | float | bool | None = None
    comment: str = ""

    def __attrs_post_init__(self) -> None:
        check_name(self.name, "column")
        if self.type not in COLUMN_TYPES:
            raise ValidationError(
                f"column {self.name!r}: type {self.type!r} is not supported; valid: {', '.join(sorted(COLUMN_TYPES))}"
            )


@attrs.frozen
class KeyDef:
    """A unique key over ``columns``."""

    columns: tuple[str, ...] = attrs.field(converter=_names)
    name: str | None = None


@attrs.frozen
class ForeignKeyDef:
    """``columns`` reference ``pk_columns`` of ``pk_schema:pk_table``."""

    columns: tuple[str, ...] = attrs.field(converter=_names)
    pk_schema: str
    pk_table: str
    pk_columns: tuple[str, ...] = attrs.field(converter=_names)
    on_delete: Literal["NO ACTION", "CASCADE", "SET NULL"] = "NO ACTION"
    name: str | None = None

    def __attrs_post_init__(self) -> None:
        if len(self.columns) != len(self.pk_columns):
            raise ValidationError(
                f"foreign key {self.columns} -> {self.pk_table}{self.pk_columns}: column counts differ"
            )


@attrs.frozen
class TableDef:
    """A table: its schema, name, kind, user columns (system columns are implied), keys and foreign keys."""

    schema: str
    name: str
    columns: tuple[ColumnDef, ...] = attrs.field(factory=tuple, converter=_columns)
    keys: tuple[KeyDef, ...] = attrs.field(factory=tuple, converter=_keys)
    foreign_keys: tuple[ForeignKeyDef, ...] = attrs.field(factory=tuple, converter=_fkeys)
    kind: TableKind = "table"
    comment: str = ""

    def __attrs_post_init__(self) -> None:
        check_name(self.schema, "schema")
        check_name(self.name, "table")
        names = [c.name for c in self.columns]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValidationError(f"table {self.name!r} repeats column(s) {sorted(dup)}")
        clash = set(names) & set(SYSTEM_COLUMNS)
        if clash:
            raise ValidationError(f"table {self.name!r}: {sorted(clash)} are system columns and are implied")
        known = set(names) | set(SYSTEM_COLUMNS)
        for key in self.keys:
            for c in key.columns:
                if c not in known:
                    raise ValidationError(f"table {self.name!r}: key column {c!r} is not a column")
        for fk in self.foreign_keys:
            for c in fk.columns:
                if c not in known:
                    raise ValidationError(f"table {self.name!r}: foreign key column {c!r} is not a column")

    @property
    def qualified(self) -> str:
        return f"{self.schema}:{self.name}"

    @property
    def column_names(self) -> tuple[str, ...]:
        """All column names, system columns first."""
        return (*SYSTEM_COLUMNS, *(c.name for c in self.columns))

    def column(self, name: str) -> ColumnDef | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None


@attrs.frozen
class CatalogModel:
    """The tables of a catalog, by schema and name (what an adapter fetches once)."""

    tables: tuple[TableDef, ...] = attrs.field(factory=tuple, converter=_tables)
    #: Schemas the backend reports, including empty ones (a new project's domain schema).
    schema_names: tuple[str, ...] = attrs.field(factory=tuple, converter=_names)

    def table(self, schema: str, name: str) -> TableDef | None:
        for t in self.tables:
            if t.schema == schema and t.name == name:
                return t
        return None

    def find(self, name: str) -> list[TableDef]:
        """Every table called ``name`` in any schema."""
        return [t for t in self.tables if t.name == name]

    def schemas(self) -> tuple[str, ...]:
        """Every schema: those holding tables and those the backend reports empty."""
        return tuple(sorted({t.schema for t in self.tables} | set(self.schema_names)))
