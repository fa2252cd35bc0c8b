"""Shared definitions of the catalog tests (imported by name: ``conftest`` is ambiguous across test folders)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from deriva_ml.catalog.schema import ML_TABLES, plain_table, vocabulary_table
from deriva_ml.core.schema_defs import ColumnDef, KeyDef, TableDef

__all__ = ["DOMAIN", "ML_TABLES", "domain_tables", "live_credential"]


DOMAIN = "test-domain"


def domain_tables() -> list[TableDef]:
    species = vocabulary_table(DOMAIN, "Species", "Kinds of subjects")
    subject = plain_table(
        DOMAIN,
        "Subject",
        [
            ColumnDef("Name", "text", nullok=False),
            ColumnDef("Age", "int4"),
            ColumnDef("Weight", "float8"),
            ColumnDef("Flag", "boolean"),
            ColumnDef("Tags", "text[]"),
            ColumnDef("Extra", "jsonb"),
        ],
        keys=[KeyDef(("Name",))],
        references={"Species": species},
    )
    return [species, subject]


def live_credential() -> dict[str, str] | None:
    """Credentials for ``DERIVA_ML_TEST_HOST`` from ``DERIVA_ML_TEST_CREDENTIAL_FILE`` (deriva-py's format)."""
    path = os.environ.get("DERIVA_ML_TEST_CREDENTIAL_FILE")
    if not path:
        return None
    data = json.loads(Path(path).read_text())
    host = os.environ["DERIVA_ML_TEST_HOST"]
    return data.get(host, data) if isinstance(data, dict) else None
