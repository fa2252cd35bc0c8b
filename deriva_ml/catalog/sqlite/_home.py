"""Embedded catalogs by name: where they live, opening one (creating it with the deriva-ml schema and
its seeded terms on first use), and bringing an older file up to date (idempotent migrations)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from deriva_ml.catalog.port import ML_SCHEMA, create_missing_tables
from deriva_ml.catalog.schema import ML_TABLES, seed_batch
from deriva_ml.catalog.sqlite._adapter import SQLiteCatalog
from deriva_ml.catalog.sqlite._ddl import status_trigger_names, status_triggers
from deriva_ml.core.effects import STATUS_COLUMN, STATUS_SCHEMA, STATUS_TABLE
from deriva_ml.core.errors import ValidationError

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def catalog_home(root: Path | None = None) -> Path:
    """Where embedded catalogs live: ``root``, else ``$DERIVA_ML_HOME``, else ``~/.deriva-ml``."""
    if root is not None:
        return Path(root)
    env = os.environ.get("DERIVA_ML_HOME")
    return Path(env) if env else Path.home() / ".deriva-ml"


def open_local_catalog(name: str, root: Path | None = None, *, journal: bool = False, **kwargs: Any) -> SQLiteCatalog:
    """Open (creating on first use) the embedded catalog ``<home>/catalogs/<name>/catalog.sqlite``.

    A new catalog gets the deriva-ml schema and its seeded terms; opening again changes nothing. With
    ``journal=True`` every later write is journalled in its own transaction (the basis of ``deriva_ml.sync``).
    """
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in (".", ".."):
        raise ValidationError(
            f"catalog name {name!r} is not valid: use letters, digits, '_', '-' or '.', starting with a "
            f"letter or digit, no path separators"
        )
    path = catalog_home(root) / "catalogs" / name / "catalog.sqlite"
    catalog = SQLiteCatalog(path, **kwargs)
    try:
        ensure_ml_schema(catalog)
    except BaseException:
        catalog.close()
        raise
    # journalled from here on (the deriva-ml schema and its seeded terms are every catalog's, not a change)
    catalog.journal = journal
    return catalog


def ensure_ml_schema(catalog: SQLiteCatalog) -> None:
    """Create the deriva-ml tables that are missing and insert missing seeded terms (idempotent)."""
    catalog.model(refresh=True)
    missing = create_missing_tables(catalog, ML_TABLES)  # another process may be creating them too
    ensure_status_constraint(catalog)
    seeded = catalog.query(ML_SCHEMA, "Asset_Role", columns=["Name"])
    if {r["Name"] for r in seeded} >= {"Input", "Output"} and not missing:
        return
    catalog.apply(seed_batch())


def ensure_status_constraint(catalog: SQLiteCatalog) -> None:
    """Add the status-value triggers to a catalog made before they existed (idempotent migration)."""
    t = catalog.model().table(STATUS_SCHEMA, STATUS_TABLE)
    if t is None or not catalog.guard_status or t.column(STATUS_COLUMN) is None:
        return
    with catalog._lock:
        (have,) = catalog.connection.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name IN (?, ?)", status_trigger_names(t)
        ).fetchone()
        if have == 2:
            return
        cur = catalog.connection.cursor()
        catalog._begin(cur)
        try:
            status_triggers(cur, t)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
