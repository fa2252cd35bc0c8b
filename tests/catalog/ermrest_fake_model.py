"""The model side of the ERMrest fake that changes over time: the model document at a snapshot
(``GET /ermrest/catalog/N@SNAP/schema``), a column added to a table (``POST /schema/S/table/T/column``), and
a table or rows as they were at a snapshot (columns added since absent).

Measured on the lab (2026-11-30): adding a column answers 201 with the column document and makes a new
snapshot; ``@SNAP/schema`` lists the schemas, tables and columns that existed then; ``@SNAP/entity/S:T``
rows lack the columns added since, and naming one (projection or filter) is 409 "Requested column B does
not exist in table T."; a malformed snapshot is 400.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import attrs

from deriva_ml.catalog import _codec
from deriva_ml.catalog.ermrest import table_from_document
from deriva_ml.catalog.sqlite._ddl import _SQL_TYPES
from deriva_ml.catalog.sqlite._sql import q, sql_name
from deriva_ml.core.schema_defs import SYSTEM_COLUMNS, TableDef


def created_after(cat: Any, key: tuple[str, ...], ddl: int) -> bool:
    """Whether the schema (``(s,)``), table (``(s, t)``) or column (``(s, t, c)``) ``key`` came after DDL ``ddl``."""
    return int(cat.created.get(key, 0)) > ddl


def table_at(cat: Any, t: TableDef, ddl: int | None) -> TableDef:
    """``t`` without the columns added after DDL ``ddl`` (``t`` itself for the live catalog)."""
    if ddl is None:
        return t
    cols = tuple(c for c in t.columns if not created_after(cat, (t.schema, t.name, c.name), ddl))
    return t if len(cols) == len(t.columns) else attrs.evolve(t, columns=cols)


def rows_at(t: TableDef, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Whole rows (``/entity/``) with only the columns ``t`` (as of a snapshot) has."""
    keep = {*SYSTEM_COLUMNS, *t.column_names}
    return [{k: v for k, v in r.items() if k in keep} for r in rows]


def model_doc(cat: Any, ddl: int | None) -> dict[str, Any]:
    """``GET /schema`` (``ddl`` None) or ``GET @SNAP/schema``: the schemas, tables, columns existing then."""
    if ddl is None:
        return {"schemas": cat.docs}
    out: dict[str, Any] = {}
    for sname, sdoc in cat.docs.items():
        if created_after(cat, (sname,), ddl):
            continue
        sdoc = copy.deepcopy(sdoc)
        for tname in list(sdoc.get("tables", {})):
            if created_after(cat, (sname, tname), ddl):
                del sdoc["tables"][tname]
                continue
            tdoc = sdoc["tables"][tname]
            tdoc["column_definitions"] = [
                c for c in tdoc["column_definitions"] if not created_after(cat, (sname, tname, c["name"]), ddl)
            ]
        out[sname] = sdoc
    return {"schemas": out}


def add_column(cat: Any, schema: str, table: str, doc: dict[str, Any]) -> tuple[int, Any]:
    """``POST /schema/S/table/T/column`` of a nullable column (the fake's subset): 201 with its document."""
    t = cat.table(schema, table)
    name = doc.get("name")
    if not name or name in t.column_names or name in SYSTEM_COLUMNS:
        return 409, f"Request conflicts with state of server. Detail: Column {name} already exists in table {table}."
    if doc.get("nullok") is False:
        return 400, "fake adds nullable columns only"
    col = {"name": name, "type": doc["type"], "nullok": True, "default": doc.get("default"), "comment": "", **doc}
    tdoc = cat.docs[schema]["tables"][table]
    tdoc["column_definitions"].append(col)
    new = table_from_document(tdoc)
    added = new.column(name)
    store = cat.store
    with store._lock:
        store._conn.execute(
            f"ALTER TABLE {q(sql_name(schema, table))} ADD COLUMN {q(name)} {_SQL_TYPES.get(added.type, 'TEXT')}"
        )
        store._conn.execute(
            "UPDATE _dml_tables SET definition = ? WHERE schema = ? AND name = ?",
            (json.dumps(_codec.dump_tables((new,))[0], sort_keys=True), schema, table),
        )
        store.model(refresh=True)
    cat.ddl += 1
    cat.created[(schema, table, name)] = cat.ddl
    return 201, col
