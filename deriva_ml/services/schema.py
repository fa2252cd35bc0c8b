"""Table and vocabulary lookups over a catalog's model: one service, shared by the facade, datasets and
executions (which never reach into the facade for them).

Keeps what it has fetched: the model (in the catalog adapter), each vocabulary's terms (once per
vocabulary until a miss) and each RID's table (a row never changes table).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from deriva_ml.context import LOCAL_HOST, Ports
from deriva_ml.core.codec import parse_json
from deriva_ml.core.definitions import ML_SCHEMA, MLVocab
from deriva_ml.core.errors import (
    DerivaMLException,
    RIDNotFound,
    UnknownTable,
    UnknownTerm,
    ValidationError,
)
from deriva_ml.core.plans import MLLayout, ml_layout, plan_add_term
from deriva_ml.core.records import Term
from deriva_ml.core.rid import parse_rid
from deriva_ml.core.schema_defs import CatalogModel, TableDef

#: Schemas that are not a user's domain schema.
SYSTEM_SCHEMAS = frozenset({ML_SCHEMA, "public", "www", "WWW", "_ermrest", "_acl_admin"})


class SchemaService:
    """Tables, vocabularies, terms and RID resolution for one handle's catalog."""

    def __init__(self, ports: Ports, domain_schema: str | None = None) -> None:
        self.ports = ports
        self._terms: dict[tuple[str, str], dict[str, Term]] = {}
        self._rid_tables: dict[str, tuple[str, str]] = {}
        self.domain_schema = domain_schema or self._guess_domain_schema()

    # ---------------------------------------------------------------------------------------- model

    def model(self, *, refresh: bool = False) -> CatalogModel:
        return self.ports.catalog.model(refresh=refresh)

    @property
    def layout(self) -> MLLayout:
        """Which variant of the deriva-ml schema this catalog has (ours or a reference version's)."""
        return ml_layout(self.ports.catalog.model())

    def domain_schemas(self) -> list[str]:
        return [s for s in self.ports.catalog.model().schemas() if s not in SYSTEM_SCHEMAS]

    def _guess_domain_schema(self) -> str | None:
        schemas = self.domain_schemas()
        if len(schemas) == 1:
            return schemas[0]
        host = self.ports.host
        if host.host_name == LOCAL_HOST:
            return host.catalog_id if host.catalog_id in schemas or not schemas else None
        return None

    def require_domain_schema(self, schema: str | None) -> str:
        s = schema or self.domain_schema
        if not s:
            raise ValidationError(
                "no domain schema: pass schema=... or DerivaML(..., domain_schema=...); "
                f"schemas in the catalog: {self.domain_schemas()}"
            )
        return s

    def table(self, name: str, schema: str | None = None) -> TableDef:
        """A table by name: in ``schema`` if given, else the domain schema, else deriva-ml, else anywhere."""
        model = self.ports.catalog.model()
        if schema is not None:
            t = model.table(schema, name)
            if t is None:
                raise UnknownTable(f"{schema}:{name}", [x.qualified for x in model.tables])
            return t
        for s in (self.domain_schema, ML_SCHEMA):
            if s and (t := model.table(s, name)) is not None:
                return t
        found = model.find(name)
        if len(found) == 1:
            return found[0]
        if not found:
            raise UnknownTable(name, sorted({t.name for t in model.tables}))
        raise ValidationError(f"table name {name!r} is ambiguous: {[t.qualified for t in found]}; pass a schema")

    def asset_table(self, name: str) -> TableDef:
        from deriva_ml.catalog.schema import is_asset

        try:
            t = self.table(name)
        except UnknownTable:
            t = None
        if t is None or not is_asset(t):
            raise UnknownTable(name, self.list_asset_tables()) from None
        return t

    def list_asset_tables(self) -> list[str]:
        """Names of every asset table (deriva-ml's and the domain's)."""
        from deriva_ml.catalog.schema import is_asset

        return sorted(t.name for t in self.ports.catalog.model().tables if is_asset(t))

    def vocabulary(self, name: str) -> TableDef:
        from deriva_ml.catalog.schema import is_vocabulary
        from deriva_ml.core.errors import NotAVocabulary

        t = self.table(str(name))
        if not is_vocabulary(t):
            vocabs = sorted(x.name for x in self.ports.catalog.model().tables if is_vocabulary(x))
            raise NotAVocabulary(t.name, vocabs)
        return t

    # ---------------------------------------------------------------------------------------- terms

    def vocab_terms(self, vocab: TableDef, *, refresh: bool = False) -> dict[str, Term]:
        key = (vocab.schema, vocab.name)
        if refresh or key not in self._terms:
            rows = self.ports.catalog.query(vocab.schema, vocab.name)
            self._terms[key] = {r["Name"]: term_from_row(r) for r in rows}
        return self._terms[key]

    def lookup_term(self, table: str, term_name: str) -> Term:
        """A term by name or synonym; :class:`UnknownTerm` names the known terms otherwise."""
        vocab = self.vocabulary(table)
        for refresh in (False, True):
            terms = self.vocab_terms(vocab, refresh=refresh)
            if term_name in terms:
                return terms[term_name]
            for t in terms.values():
                if term_name in t.synonyms:
                    return t
        raise UnknownTerm(vocab.name, term_name, sorted(self.vocab_terms(vocab)))

    def list_terms(self, table: str) -> list[Term]:
        return sorted(self.vocab_terms(self.vocabulary(table), refresh=True).values(), key=lambda t: t.name)

    def validate_terms(self, table: str, names: Iterable[str]) -> tuple[str, ...]:
        """Canonical term names for ``names`` (synonyms resolved); UnknownTerm on the first unknown one."""
        return tuple(self.lookup_term(table, n).name for n in names)

    def default_asset_types(self, table: str) -> tuple[str, ...]:
        vocab = self.vocabulary(MLVocab.asset_type)
        return (table,) if table in self.vocab_terms(vocab) else ()

    def add_term(
        self,
        table: str,
        term_name: str,
        description: str = "",
        synonyms: Sequence[str] | None = None,
        exists_ok: bool = True,
    ) -> Term:
        """Add a term to a vocabulary (the existing term is returned when ``exists_ok``)."""
        vocab = self.vocabulary(table)
        terms = self.vocab_terms(vocab)
        if term_name in terms:
            if not exists_ok:
                from deriva_ml.core.errors import ConflictError

                raise ConflictError(f"term {term_name!r} already exists in {vocab.name}")
            return terms[term_name]
        result = self.ports.catalog.apply(
            plan_add_term(vocab.schema, vocab.name, term_name, description, tuple(synonyms or ()))
        )
        inserted = result.inserted[0]
        if not inserted:  # another process added it concurrently
            self._terms.pop((vocab.schema, vocab.name), None)
            return self.lookup_term(table, term_name)
        term = term_from_row(inserted[0])
        self._terms[(vocab.schema, vocab.name)][term.name] = term
        return term

    # ----------------------------------------------------------------------------------------- RIDs

    def resolve_rid(self, rid: str) -> tuple[str, str]:
        """``(schema, table)`` of the row with this RID (remembered: a row never changes table)."""
        rid = parse_rid(rid)
        found = self._rid_tables.get(rid)
        if found is None:
            found = self._rid_tables[rid] = self.ports.catalog.resolve_rid(rid)
        return found

    def not_in_table(self, rid: str, table: str) -> RIDNotFound:
        """The error for a RID that is not a row of ``table``: :class:`WrongTable` naming the table it does
        belong to, else :class:`RIDNotFound` (one extra request, made only on the error path)."""
        from deriva_ml.core.errors import WrongTable

        try:
            schema, actual = self.resolve_rid(rid)
        except (RIDNotFound, DerivaMLException):
            return RIDNotFound(rid, table)
        if actual == table:
            return RIDNotFound(rid, table)
        return WrongTable(rid, table, f"{schema}:{actual}")


def term_from_row(row: Mapping[str, Any]) -> Term:
    syn = row.get("Synonyms") or ()
    if isinstance(syn, str):
        try:
            syn = parse_json(syn, f"Synonyms of term {row.get('Name')!r}")
        except ValueError:
            syn = [syn]
        if not isinstance(syn, list) or not all(isinstance(s, str) for s in syn):
            raise ValidationError(
                f"Synonyms of term {row.get('Name')!r}: expected a list of names, got {str(row.get('Synonyms'))[:100]!r}"
            )
    return Term(
        name=row["Name"],
        description=row.get("Description") or "",
        synonyms=tuple(syn),
        id=row.get("ID"),
        uri=row.get("URI"),
        rid=row.get("RID"),
    )
