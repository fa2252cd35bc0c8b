"""A private cattrs converter for what the catalog adapters store as JSON.

- table definitions (the SQLite catalog keeps its model as JSON);
- effects, batches and batch results (the journal): ``Ref`` ↔ ``{"$ref": label}``, each effect tagged
  with ``"kind": "insert" | "update" | "delete"``.

Built by a factory, never the global converter. ``deriva_ml.core.codec`` may later absorb it.
"""

from __future__ import annotations

from typing import Any

import cattrs

from deriva_ml.core.codec import effect_from_json, effect_to_json, row_to_json
from deriva_ml.core.effects import Batch, BatchResult, Delete, Effect, Insert, SetStatus, Update
from deriva_ml.core.rid import RID
from deriva_ml.core.schema_defs import CatalogModel, TableDef


def make_converter() -> cattrs.Converter:
    """A fresh converter for catalog JSON (model, effects, batches, results)."""
    conv = cattrs.Converter()
    conv.register_structure_hook(str | int | float | bool | None, lambda v, _: v)

    for cls in (Insert, Update, Delete, SetStatus):
        conv.register_unstructure_hook(cls, effect_to_json)
        conv.register_structure_hook(cls, effect_from_json)
    conv.register_structure_hook(Effect, effect_from_json)

    conv.register_unstructure_hook(Batch, lambda b: {"effects": [effect_to_json(e) for e in b.effects]})
    conv.register_structure_hook(Batch, lambda d, _: Batch(tuple(effect_from_json(e, None) for e in d["effects"])))
    conv.register_unstructure_hook(
        BatchResult,
        lambda r: {
            "rids": {k: str(v) for k, v in r.rids.items()},
            "inserted": [[row_to_json(row) for row in rows] for rows in r.inserted],
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
