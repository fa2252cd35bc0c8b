"""A live ERMrest catalog through deriva-py's HTTP binding (the only package that imports ``deriva``).

- :class:`ErmrestCatalog` (``_adapter``): the catalog port over HTTP (requests, paging, snapshots);
- ``_writer``: a batch as requests; ``_urls``: URLs, the filter language and the URL budget;
- ``_documents``: ERMrest model documents <-> :class:`~deriva_ml.core.schema_defs.TableDef`;
- ``_errors``: HTTP answers as deriva_ml errors; :func:`create_ml_catalog` (``_create``): a new catalog.
"""

from deriva_ml.catalog.ermrest._adapter import (
    DEFAULT_SESSION_CONFIG,
    ROLLED_BACK_DELAY,
    ROLLED_BACK_RETRIES,
    ErmrestCatalog,
)
from deriva_ml.catalog.ermrest._create import create_ml_catalog
from deriva_ml.catalog.ermrest._documents import model_from_document, table_document, table_from_document
from deriva_ml.catalog.ermrest._urls import URL_BUDGET
from deriva_ml.catalog.ermrest._urls import path as _path
from deriva_ml.catalog.ermrest._urls import render_filter as _render_filter

__all__ = [
    "DEFAULT_SESSION_CONFIG",
    "ROLLED_BACK_DELAY",
    "ROLLED_BACK_RETRIES",
    "URL_BUDGET",
    "ErmrestCatalog",
    "_path",
    "_render_filter",
    "create_ml_catalog",
    "model_from_document",
    "table_document",
    "table_from_document",
]
