"""A private cattrs converter for what the catalog adapters store as JSON.

- table definitions (the SQLite catalog keeps its model as JSON);
- effects, batches and batch results (the journal): ``Ref`` ↔ ``{"$ref": label}``, each effect tagged
  with ``"kind": "insert" | "update" | "delete"``.

Built by a factory, never the global converter. ``deriva_ml.core.codec`` may later absorb it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cattrs

from deriva_ml.core.effects import Batch, BatchResult, Delete, Effect, Insert, Ref, Update
from deriva_ml.core.errors import ConfigurationError
from deriva_ml.core.rid import RID
from deriva_ml.core.schema_defs import CatalogModel, TableDef

_KINDS: dict[type, str] = {Insert: "insert", Update: "update", Delete: "delete"}


_PLAIN = (str, int, float, bool, type(None))


def encode_value(value: Any) -> Any:
    """A row value as JSON: ``Ref`` becomes ``{"$ref": label}``; containers are walked."""
    if type(value) in _PLAIN:  # the common case, without the isinstance chain
        return value
    if isinstance(value, Ref):
        return {"$ref": value.label}
    if isinstance(value, Mapping):
        return {str(k): encode_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode_value(v) for v in value]
    return value


def decode_value(value: Any) -> Any:
    """Inverse of :func:`encode_value`."""
    if isinstance(value, dict):
        if len(value) == 1 and "$ref" in value and isinstance(value["$ref"], str):
            return Ref(value["$ref"])
        return {k: decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    return value


def _row(row: Mapping[str, Any]) -> dict[str, Any]:
    if all(type(v) in _PLAIN for v in row.values()):
        return dict(row)
    return {str(k): encode_value(v) for k, v in row.items()}


def make_converter() -> cattrs.Converter:
    """A fresh converter for catalog JSON (model, effects, batches, results)."""
    conv = cattrs.Converter()
    conv.register_structure_hook(str | int | float | bool | None, lambda v, _: v)

    def unstructure_effect(effect: Effect) -> dict[str, Any]:
        kind = _KINDS[type(effect)]
        if isinstance(effect, Insert):
            return {
                "kind": kind,
                "schema": effect.schema,
                "table": effect.table,
                "rows": [_row(r) for r in effect.rows],
                "labels": list(effect.labels),
                "on_conflict_skip": effect.on_conflict_skip,
            }
        if isinstance(effect, Update):
            return {
                "kind": kind,
                "schema": effect.schema,
                "table": effect.table,
                "rows": [_row(r) for r in effect.rows],
                "key": list(effect.key),
            }
        return {
            "kind": kind,
            "schema": effect.schema,
            "table": effect.table,
            "column": effect.column,
            "values": [encode_value(v) for v in effect.values],
            "where": _row(effect.where),
        }

    def structure_effect(data: Any, _: Any) -> Effect:
        if not isinstance(data, dict) or data.get("kind") not in ("insert", "update", "delete"):
            raise ConfigurationError(f"effect {data!r} lacks a kind of 'insert', 'update' or 'delete'")
        try:
            kind = data["kind"]
            if kind == "insert":
                return Insert(
                    data["schema"],
                    data["table"],
                    [decode_value(r) for r in data["rows"]],
                    labels=tuple(data.get("labels", ())),
                    on_conflict_skip=bool(data.get("on_conflict_skip", False)),
                )
            if kind == "update":
                return Update(
                    data["schema"],
                    data["table"],
                    [decode_value(r) for r in data["rows"]],
                    key=tuple(data.get("key", ("RID",))),
                )
            return Delete(
                data["schema"],
                data["table"],
                data["column"],
                tuple(decode_value(v) for v in data["values"]),
                decode_value(data.get("where", {})),
            )
        except KeyError as e:
            raise ConfigurationError(f"effect {data!r} lacks field {e.args[0]!r}") from e

    for cls in (Insert, Update, Delete):
        conv.register_unstructure_hook(cls, unstructure_effect)
        conv.register_structure_hook(cls, structure_effect)
    conv.register_structure_hook(Effect, structure_effect)

    conv.register_unstructure_hook(Batch, lambda b: {"effects": [unstructure_effect(e) for e in b.effects]})
    conv.register_structure_hook(Batch, lambda d, _: Batch(tuple(structure_effect(e, None) for e in d["effects"])))
    conv.register_unstructure_hook(
        BatchResult,
        lambda r: {
            "rids": {k: str(v) for k, v in r.rids.items()},
            "inserted": [[_row(row) for row in rows] for rows in r.inserted],
        },
    )
    conv.register_structure_hook(
        BatchResult,
        lambda d, _: BatchResult(
            rids={k: RID(v) for k, v in d.get("rids", {}).items()},
            inserted=tuple(tuple(dict(row) for row in rows) for rows in d.get("inserted", [])),
        ),
    )
    return conv


_CONVERTER = make_converter()


def dump_tables(tables: tuple[TableDef, ...]) -> list[dict[str, Any]]:
    return [_CONVERTER.unstructure(t) for t in tables]


def load_table(data: Any) -> TableDef:
    return _CONVERTER.structure(data, TableDef)


def dump_model(model: CatalogModel) -> dict[str, Any]:
    return _CONVERTER.unstructure(model)  # type: ignore[no-any-return]


def load_model(data: Any) -> CatalogModel:
    return _CONVERTER.structure(data, CatalogModel)
