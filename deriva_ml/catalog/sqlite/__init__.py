"""The embedded catalog: one SQLite file that behaves like a small ERMrest catalog.

- :class:`SQLiteCatalog` (``_adapter``): the catalog port on one file;
- :func:`open_local_catalog`, :func:`catalog_home`, :func:`ensure_ml_schema` (``_home``): catalogs by name;
- :func:`encode_rid`, :func:`decode_rid` (``_rid``): ERMrest's RID rendering of the RID counter.

The file layout is described in ``_adapter`` and ``docs/catalog.md``.
"""

from deriva_ml.catalog.sqlite._adapter import SQLiteCatalog
from deriva_ml.catalog.sqlite._home import catalog_home, ensure_ml_schema, ensure_status_constraint, open_local_catalog
from deriva_ml.catalog.sqlite._rid import FIRST_RID, decode_rid, encode_rid

__all__ = [
    "FIRST_RID",
    "SQLiteCatalog",
    "catalog_home",
    "decode_rid",
    "encode_rid",
    "ensure_ml_schema",
    "ensure_status_constraint",
    "open_local_catalog",
]
