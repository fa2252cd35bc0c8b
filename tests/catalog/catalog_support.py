"""Shared definitions of the catalog tests (imported by name: ``conftest`` is ambiguous across test folders)."""

from __future__ import annotations

from deriva_ml.catalog.schema import ML_TABLES, plain_table, vocabulary_table
from deriva_ml.core.schema_defs import ColumnDef, KeyDef, TableDef

__all__ = ["DOMAIN", "ML_TABLES", "domain_tables"]


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
