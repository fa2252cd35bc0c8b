"""What the catalog adapters store as JSON, through the one converter (:mod:`deriva_ml.core.convert`).

- table definitions (the SQLite catalog keeps its model as JSON);
- effects, batches and batch results (the journal): ``Ref`` ↔ ``{"$ref": label}``, each effect tagged
  with ``"kind": "insert" | "update" | "delete" | "set_status"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deriva_ml.core.convert import converter
from deriva_ml.core.schema_defs import CatalogModel, TableDef

if TYPE_CHECKING:
    import cattrs


def make_converter() -> cattrs.Converter:
    """A fresh converter for catalog JSON (model, effects, batches, results): the core's factory."""
    from deriva_ml.core.convert import make_converter as make

    return make()


def dump_tables(tables: tuple[TableDef, ...]) -> list[dict[str, Any]]:
    return [converter().unstructure(t) for t in tables]


def load_table(data: Any) -> TableDef:
    return converter().structure(data, TableDef)


def dump_model(model: CatalogModel) -> dict[str, Any]:
    return converter().unstructure(model)  # type: ignore[no-any-return]


def load_model(data: Any) -> CatalogModel:
    return converter().structure(data, CatalogModel)
