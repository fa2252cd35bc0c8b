"""The data side of a catalog: domain rows (insert, query, update, delete), assets and catalog reads.

``from deriva_ml.data import col`` builds filters for ``ml.query(table).where(...)``; :class:`Asset` is what
``ml.list_assets``/``find_assets``/``lookup_asset`` return; :class:`FileSpec` describes a file for
``ml.add_files``. Nothing heavy is imported here (pandas only inside ``get_table_as_dataframe``).
"""

from __future__ import annotations

from deriva_ml.core.filters import And, Cmp, In, Not, Or, PathQuery, Step, col
from deriva_ml.data._assets import Asset, FileSpec
from deriva_ml.data._query import Query
from deriva_ml.data._service import EmbeddedCatalogOnly
from deriva_ml.data._snapshot import ReadOnlyCatalog

__all__ = [
    "And",
    "Asset",
    "Cmp",
    "EmbeddedCatalogOnly",
    "FileSpec",
    "In",
    "Not",
    "Or",
    "PathQuery",
    "Query",
    "ReadOnlyCatalog",
    "Step",
    "col",
]
