"""The catalog port and its adapters.

- :class:`~deriva_ml.catalog.port.Catalog` — the Protocol the rest of deriva_ml uses;
- :mod:`deriva_ml.catalog.sqlite` — the embedded catalog; :mod:`deriva_ml.catalog.ermrest` — a live ERMrest;
- :mod:`deriva_ml.catalog.journal` — journalling and replay; :mod:`deriva_ml.catalog.schema` — the schema.

Adapters are imported from their modules (``deriva_ml.catalog.ermrest`` loads deriva-py) so that importing
this package stays cheap.
"""

from deriva_ml.catalog._codec import dump_model, load_model
from deriva_ml.catalog.port import ML_SCHEMA, Catalog, Where

__all__ = ["ML_SCHEMA", "Catalog", "Where", "dump_model", "load_model"]
