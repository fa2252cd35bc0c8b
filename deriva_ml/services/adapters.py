"""Where a handle's files live, and opening its adapters: the embedded catalog and store, or ERMrest and Hatrac.

Used by the facade's constructor; the heavy adapters (deriva-py) load only when a live host is opened.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deriva_ml._util import safe_name
from deriva_ml.catalog.port import Catalog
from deriva_ml.store.port import ObjectStore


def deriva_ml_home(home: str | os.PathLike[str] | None = None) -> Path:
    """Where embedded catalogs, working directories and the cache live by default.

    ``home`` argument, else ``$DERIVA_ML_HOME``, else ``~/.deriva-ml``.
    """
    if home is not None:
        return Path(home).expanduser()
    env = os.environ.get("DERIVA_ML_HOME")
    return Path(env).expanduser() if env else Path.home() / ".deriva-ml"


def list_embedded_catalogs(home: str | os.PathLike[str] | None = None) -> list[str]:
    """Names of the embedded catalogs under ``home`` (those with a ``catalog.sqlite``), sorted. Reads only."""
    root = deriva_ml_home(home) / "catalogs"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "catalog.sqlite").is_file())


def open_embedded(home: Path, catalog_id: str) -> tuple[Catalog, ObjectStore]:
    """The embedded catalog ``<home>/catalogs/<catalog_id>`` (journalled) and its local object store."""
    from deriva_ml.catalog.sqlite import open_local_catalog
    from deriva_ml.store.local import LocalObjectStore

    # every later write is journalled in the same transaction: the basis of ``deriva_ml.sync``
    catalog = open_local_catalog(catalog_id, home, journal=True)
    return catalog, LocalObjectStore(Path(catalog.path).parent / "objects")


def open_live(
    home: Path,
    host_name: str,
    catalog_id: str,
    credential: Mapping[str, Any] | None,
    session_config: Mapping[str, Any] | None,
) -> tuple[Catalog, ObjectStore]:
    """An ERMrest catalog and the server's Hatrac store (chunked uploads resume from ``home/upload-state``)."""
    from deriva_ml.catalog.ermrest import ErmrestCatalog
    from deriva_ml.store.hatrac import HatracObjectStore

    catalog = ErmrestCatalog(host_name, catalog_id, credential=credential, session_config=session_config)
    store = HatracObjectStore(
        host_name,
        credential=credential,
        session_config=session_config,
        state_dir=home / "upload-state" / safe_name(host_name),
    )
    return catalog, store
