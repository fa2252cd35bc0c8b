"""SQL names and the per-table plan of the embedded catalog: quoting, the SQL table of a catalog table,
and how a table's rows are encoded to and decoded from SQLite values (JSON and boolean columns)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from deriva_ml.catalog._common import JSON_TYPES
from deriva_ml.core.codec import parse_json
from deriva_ml.core.schema_defs import SYSTEM_COLUMNS, TableDef

#: The hidden column of every table: the batch (snapshot id) that inserted the row.
HIDDEN_SEQ = "_seq"
#: Longest list of values bound as separate parameters (longer lists are one JSON parameter).
CHUNK = 500


def q(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def sql_name(schema: str, table: str) -> str:
    """The SQLite table that holds ``schema:table`` (SQLite has no schemas)."""
    return f"{schema}:{table}"


class Plan:
    """Per-table SQL pieces, derived once from a TableDef."""

    def __init__(self, table: TableDef) -> None:
        self.table = table
        self.sql = q(sql_name(table.schema, table.name))
        self.user_cols = tuple(c.name for c in table.columns)
        self.user_set = frozenset(self.user_cols)
        self.json_cols = frozenset(c.name for c in table.columns if c.type in JSON_TYPES)
        self.bool_cols = frozenset(c.name for c in table.columns if c.type == "boolean")
        # (name, default, rid-template, encode-as-json)
        self.fill: list[tuple[str, Any, str | None, bool]] = []
        for c in table.columns:
            tmpl = c.default if isinstance(c.default, str) and "{RID}" in c.default else None
            self.fill.append((c.name, c.default, tmpl, c.name in self.json_cols))
        cols = (*SYSTEM_COLUMNS, HIDDEN_SEQ, *self.user_cols)
        marks = ",".join("?" * len(cols))
        names = ",".join(q(c) for c in cols)
        self.insert_sql = f"INSERT INTO {self.sql} ({names}) VALUES ({marks})"
        self.insert_skip_sql = self.insert_sql + " ON CONFLICT DO NOTHING"
        self.keys = [k.columns for k in table.keys]

    def decode(self, names: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in zip(names, row, strict=True):
            if value is not None:
                if name in self.json_cols:
                    value = parse_json(value, f"column {name} of a catalog row")
                elif name in self.bool_cols:
                    value = bool(value)
            out[name] = value
        return out

    def encode(self, name: str, value: Any) -> Any:
        if value is not None and name in self.json_cols:
            return json.dumps(value, sort_keys=True)
        return value
