"""The facade's model and vocabulary calls: the catalog model, domain tables, vocabularies, terms, RIDs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deriva_ml._facade._base import FacadeBase
from deriva_ml.core.definitions import MLVocab
from deriva_ml.core.plans import MLLayout
from deriva_ml.core.records import Term
from deriva_ml.core.schema_defs import ColumnDef, TableDef


class SchemaFacade(FacadeBase):
    """``DerivaML``'s calls on the catalog model, domain tables and vocabularies (``services.schema``)."""

    def model(self, *, refresh: bool = False) -> Any:
        return self._schema.model(refresh=refresh)

    @property
    def layout(self) -> MLLayout:
        """Which variant of the deriva-ml schema this catalog has (ours or a reference version's)."""
        return self._schema.layout

    def list_asset_tables(self) -> list[str]:
        """Names of every asset table (deriva-ml's and the domain's)."""
        return self._schema.list_asset_tables()

    # ------------------------------------------------------------------------------- domain helpers

    def create_vocabulary(self, vocab_name: str, comment: str = "", *, schema: str | None = None) -> TableDef:
        """Create a controlled vocabulary table in the domain schema."""
        from deriva_ml.catalog.schema import vocabulary_table

        t = vocabulary_table(self._schema.require_domain_schema(schema), vocab_name, comment)
        self._ports.catalog.create_tables([t])
        return t

    def create_table(
        self,
        name: str,
        columns: Sequence[ColumnDef] = (),
        *,
        references: Sequence[str] = (),
        schema: str | None = None,
        comment: str = "",
    ) -> TableDef:
        """Create a plain domain table (e.g. ``Subject``); ``references`` names tables it refers to."""
        from deriva_ml.catalog.schema import plain_table

        refs = {r: self._schema.table(r) for r in references}
        t = plain_table(self._schema.require_domain_schema(schema), name, columns, references=refs, comment=comment)
        self._ports.catalog.create_tables([t])
        return t

    def create_asset(
        self,
        asset_name: str,
        column_defs: Sequence[ColumnDef] = (),
        referenced_tables: Sequence[str] = (),
        comment: str = "",
        *,
        schema: str | None = None,
    ) -> TableDef:
        """Create a domain asset table (with ``_Asset_Type`` and ``_Execution`` tables) and its Asset_Type term."""
        from deriva_ml.catalog.schema import asset_table

        refs = [self._schema.table(r) for r in referenced_tables]
        tables = asset_table(self._schema.require_domain_schema(schema), asset_name, column_defs, refs, comment=comment)
        self._ports.catalog.create_tables(list(tables))
        self.add_term(MLVocab.asset_type, asset_name, f"A {asset_name} asset", exists_ok=True)
        return tables[0]

    def add_term(
        self,
        table: str,
        term_name: str,
        description: str = "",
        synonyms: Sequence[str] | None = None,
        exists_ok: bool = True,
    ) -> Term:
        """Add a term to a vocabulary (the existing term is returned when ``exists_ok``)."""
        return self._schema.add_term(table, term_name, description, synonyms, exists_ok)

    def lookup_term(self, table: str, term_name: str) -> Term:
        """A term by name or synonym; :class:`UnknownTerm` names the known terms otherwise."""
        return self._schema.lookup_term(table, term_name)

    def list_vocabulary_terms(self, table: str) -> list[Term]:
        return self._schema.list_terms(table)

    def resolve_rid(self, rid: str) -> tuple[str, str]:
        """``(schema, table)`` of the row with this RID (remembered: a row never changes table)."""
        return self._schema.resolve_rid(rid)
