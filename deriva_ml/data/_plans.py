"""Pure plans for writes to a user's own tables: rows in, a :class:`Batch` out (no I/O).

Checks happen here, before any request: unknown columns (:class:`UnknownColumn` naming the valid ones),
system columns (set by the catalog, never by the caller), rows without a RID for an update, writes to the
deriva-ml schema (its tables have their own API: executions, datasets, vocabularies).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from deriva_ml.catalog._common import check_columns
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.effects import Batch, Delete, Insert, Update
from deriva_ml.core.errors import ValidationError
from deriva_ml.core.rid import parse_rid
from deriva_ml.core.schema_defs import SYSTEM_COLUMNS, TableDef


def check_user_table(table: TableDef, what: str) -> None:
    """Writes through the data API go to domain tables; the deriva-ml schema's tables have their own API."""
    if table.schema == ML_SCHEMA:
        raise ValidationError(
            f"{what} {table.qualified}: tables of the {ML_SCHEMA!r} schema are written through their own API "
            "(executions, datasets, add_term, add_files), not the data API"
        )


def _rows(rows: Iterable[Mapping[str, Any]] | Mapping[str, Any], what: str) -> list[dict[str, Any]]:
    if isinstance(rows, Mapping):
        rows = [rows]
    out = []
    for r in rows:
        if not isinstance(r, Mapping):
            raise ValidationError(f"{what}: each row must be a dict of column values, got {r!r}")
        out.append(dict(r))
    return out


def plan_insert(table: TableDef, rows: Iterable[Mapping[str, Any]] | Mapping[str, Any]) -> Batch:
    """One Insert of ``rows`` (system columns refused, columns checked against the table)."""
    check_user_table(table, "insert into")
    out = _rows(rows, f"insert into {table.qualified}")
    for r in out:
        system = sorted(c for c in r if c in SYSTEM_COLUMNS)
        if system:
            raise ValidationError(
                f"insert into {table.qualified}: {system} are system columns set by the catalog; "
                f"settable columns: {', '.join(table.column_names[5:]) or '(none)'}"
            )
        check_columns(table, r)
    return Batch([Insert(table.schema, table.name, out)]) if out else Batch(())


def plan_update(table: TableDef, rows: Iterable[Mapping[str, Any]] | Mapping[str, Any]) -> Batch:
    """One Update keyed by RID: each row names its RID and the columns to set."""
    check_user_table(table, "update of")
    out = _rows(rows, f"update of {table.qualified}")
    for r in out:
        if "RID" not in r:
            raise ValidationError(f"update of {table.qualified}: row {r!r} has no RID (rows are updated by RID)")
        r["RID"] = parse_rid(r["RID"])
        system = sorted(c for c in r if c in SYSTEM_COLUMNS and c != "RID")
        if system:
            raise ValidationError(f"update of {table.qualified}: {system} are system columns set by the catalog")
        if len(r) == 1:
            raise ValidationError(f"update of {table.qualified}: row {r!r} sets no column")
        check_columns(table, r)
    return Batch([Update(table.schema, table.name, out)]) if out else Batch(())


def plan_delete(table: TableDef, rids: Sequence[str]) -> Batch:
    """One Delete of the rows with these RIDs (none: an empty batch)."""
    check_user_table(table, "delete from")
    clean = list(dict.fromkeys(parse_rid(r) for r in rids))
    return Batch([Delete(table.schema, table.name, "RID", clean)]) if clean else Batch(())
