"""ERMrest model documents and :class:`TableDef`: the table document sent to create a table, and the
catalog model read back from ``GET /schema`` (system columns, the RID key and RCB/RMB foreign keys are
ERMrest's own and are dropped)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deriva_ml.catalog.schema import table_kind
from deriva_ml.core.errors import ValidationError
from deriva_ml.core.schema_defs import (
    COLUMN_TYPES,
    SYSTEM_COLUMNS,
    CatalogModel,
    ColumnDef,
    ForeignKeyDef,
    KeyDef,
    TableDef,
)

_SYSTEM_TYPES = {
    "RID": "ermrest_rid",
    "RCT": "ermrest_rct",
    "RMT": "ermrest_rmt",
    "RCB": "ermrest_rcb",
    "RMB": "ermrest_rmb",
}


def _type_doc(typename: str) -> dict[str, Any]:
    if typename.endswith("[]"):
        return {"typename": typename, "is_array": True, "base_type": {"typename": typename[:-2]}}
    return {"typename": typename}


def table_document(t: TableDef) -> dict[str, Any]:
    """The ERMrest table representation of ``t`` (system columns and the RID key included)."""
    cols: list[dict[str, Any]] = [
        {"name": n, "type": _type_doc(ty), "nullok": n in ("RCB", "RMB"), "comment": "System column"}
        for n, ty in _SYSTEM_TYPES.items()
    ]
    for c in t.columns:
        doc: dict[str, Any] = {"name": c.name, "type": _type_doc(c.type), "nullok": c.nullok, "comment": c.comment}
        if c.default is not None:
            doc["default"] = c.default
        cols.append(doc)
    keys = [{"unique_columns": ["RID"], "names": [[t.schema, f"{t.name}_RIDkey1"]]}]
    for k in t.keys:
        name = k.name or f"{t.name}_{'_'.join(k.columns)}_key"
        keys.append({"unique_columns": list(k.columns), "names": [[t.schema, name[:63]]]})
    fkeys = []
    for fk in t.foreign_keys:
        name = fk.name or f"{t.name}_{'_'.join(fk.columns)}_fkey"
        fkeys.append(
            {
                "foreign_key_columns": [
                    {"schema_name": t.schema, "table_name": t.name, "column_name": c} for c in fk.columns
                ],
                "referenced_columns": [
                    {"schema_name": fk.pk_schema, "table_name": fk.pk_table, "column_name": c} for c in fk.pk_columns
                ],
                "on_delete": fk.on_delete,
                "names": [[t.schema, name[:63]]],
            }
        )
    return {
        "schema_name": t.schema,
        "table_name": t.name,
        "comment": t.comment,
        "kind": "table",
        "annotations": {},
        "column_definitions": cols,
        "keys": keys,
        "foreign_keys": fkeys,
    }


def _column_type(doc: Mapping[str, Any]) -> str:
    typename = str(doc.get("typename", "text"))
    if typename in COLUMN_TYPES:
        return typename
    if doc.get("is_array"):
        return "text[]" if (doc.get("base_type") or {}).get("typename") in ("text", "markdown") else "jsonb"
    if typename.startswith(("serial", "int")):
        return "int8"
    if typename.startswith("float") or typename == "numeric":
        return "float8"
    if (doc.get("base_type") or {}).get("typename") in COLUMN_TYPES:  # domains such as markdown
        return str(doc["base_type"]["typename"])
    return "text"


def table_from_document(doc: Mapping[str, Any]) -> TableDef:
    """A :class:`TableDef` from an ERMrest table representation (system columns, RID key, RCB/RMB fkeys dropped)."""
    schema, name = doc["schema_name"], doc["table_name"]
    cols = tuple(
        ColumnDef(
            c["name"],
            _column_type(c.get("type") or {}),
            bool(c.get("nullok", True)),
            c.get("default") if isinstance(c.get("default"), str | int | float | bool) else None,
            c.get("comment") or "",
        )
        for c in doc.get("column_definitions", [])
        if c["name"] not in SYSTEM_COLUMNS
    )
    keys = tuple(
        KeyDef(tuple(k["unique_columns"]), (k.get("names") or [[None, None]])[0][1])
        for k in doc.get("keys", [])
        if list(k["unique_columns"]) != ["RID"]
    )
    fks = []
    for fk in doc.get("foreign_keys", []):
        fcols = tuple(c["column_name"] for c in fk["foreign_key_columns"])
        if set(fcols) <= set(SYSTEM_COLUMNS):
            continue
        ref = fk["referenced_columns"]
        fks.append(
            ForeignKeyDef(
                fcols,
                ref[0]["schema_name"],
                ref[0]["table_name"],
                tuple(c["column_name"] for c in ref),
                on_delete=fk.get("on_delete") if fk.get("on_delete") in ("CASCADE", "SET NULL") else "NO ACTION",
                name=(fk.get("names") or [[None, None]])[0][1],
            )
        )
    t = TableDef(schema=schema, name=name, columns=cols, keys=keys, foreign_keys=fks, comment=doc.get("comment") or "")
    kind = table_kind(t)
    return t if kind == "table" else TableDef(t.schema, t.name, t.columns, t.keys, t.foreign_keys, kind, t.comment)


def model_from_document(doc: Mapping[str, Any]) -> CatalogModel:
    """The catalog model of a ``GET /schema`` document (tables deriva_ml cannot address are left out)."""
    tables = []
    for sname, sdoc in sorted((doc.get("schemas") or {}).items()):
        for tname, tdoc in sorted((sdoc.get("tables") or {}).items()):
            try:
                tables.append(table_from_document({"schema_name": sname, "table_name": tname, **tdoc}))
            except ValidationError:
                continue  # names deriva_ml cannot address (e.g. longer than 63 characters)
    return CatalogModel(tuple(tables), schema_names=tuple(sorted(doc.get("schemas") or {})))
