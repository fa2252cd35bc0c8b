"""SQLite errors of the embedded catalog as deriva_ml errors: a held lock as :class:`CatalogBusy`, a
constraint a write broke as the error that names the offending value (looked up in the transaction)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from deriva_ml.catalog.sqlite._sql import Plan, q, sql_name
from deriva_ml.core.errors import CatalogBusy, CatalogError, ConflictError, ForeignKeyError, ValidationError


def busy_or(err: sqlite3.Error, message: str) -> CatalogError:
    """:class:`CatalogBusy` when ``err`` says another process holds the lock, else :class:`CatalogError`."""
    text = str(err).lower()
    if "locked" in text or "busy" in text:
        return CatalogBusy(f"{message}: {err} (another process holds the lock; retry later)")
    return CatalogError(message)


def _unique_cols(msg: str) -> list[str]:
    # "UNIQUE constraint failed: deriva-ml:Workflow_Type.Name, deriva-ml:Workflow_Type.ID"
    body = msg.split("failed:", 1)[-1]
    return [part.strip().rsplit(".", 1)[-1] for part in body.split(",") if part.strip()]


def integrity_error(
    cur: sqlite3.Cursor,
    plan: Plan,
    err: sqlite3.IntegrityError,
    rows: Sequence[Mapping[str, Any]],
    what: str,
) -> CatalogError | ValidationError:
    """The error for a constraint ``what`` (insert, update) of ``rows`` into ``plan``'s table broke: the
    status trigger, NOT NULL, a key (with the value already stored), a foreign key (with the value that
    references no row)."""
    msg = str(err)
    t = plan.table
    if msg.startswith("Execution.Status"):
        return ValidationError(f"{what} of {t.qualified}: {msg}")
    if msg.startswith("NOT NULL constraint failed"):
        col = msg.rsplit(".", 1)[-1]
        return ValidationError(f"{what} of {t.qualified}: column {col!r} must have a value (it is not nullable)")
    if msg.startswith("UNIQUE constraint failed"):
        cols = _unique_cols(msg)
        value: Any = None
        for row in rows:
            if all(c in row for c in cols):
                cond = " AND ".join(f"{q(c)} = ?" for c in cols)
                if cur.execute(
                    f"SELECT 1 FROM {plan.sql} WHERE {cond}", [plan.encode(c, row[c]) for c in cols]
                ).fetchone():
                    value = row[cols[0]] if len(cols) == 1 else {c: row[c] for c in cols}
                    break
        return ConflictError(f"{what} of {t.qualified}: a row with {'/'.join(cols)} = {value!r} already exists")
    if msg.startswith("FOREIGN KEY constraint failed"):
        for row in rows:
            for fk in t.foreign_keys:
                vals = [row.get(c) for c in fk.columns]
                if any(v is None for v in vals):
                    continue
                cond = " AND ".join(f"{q(c)} = ?" for c in fk.pk_columns)
                target = q(sql_name(fk.pk_schema, fk.pk_table))
                if not cur.execute(f"SELECT 1 FROM {target} WHERE {cond}", vals).fetchone():
                    shown = vals[0] if len(vals) == 1 else vals
                    return ForeignKeyError(
                        f"{what} of {t.qualified}: {'/'.join(fk.columns)} = {shown!r} references no "
                        f"row of {fk.pk_schema}:{fk.pk_table} ({'/'.join(fk.pk_columns)})"
                    )
        return ForeignKeyError(f"{what} of {t.qualified}: a foreign key references a missing row")
    return CatalogError(f"{what} of {t.qualified} failed: {msg}")
