"""The feature service: create, describe and read features through the catalog port.

Takes the handle's :class:`~deriva_ml.context.Ports` and :class:`~deriva_ml.services.schema.SchemaService`
(never the facade). Decisions are the pure functions of :mod:`deriva_ml.feature._model`,
:mod:`deriva_ml.feature._records` and :mod:`deriva_ml.core.selectors`; this shell gathers the model and the
rows and applies the DDL. Reading a feature's values is one query however many values there are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from deriva_ml.context import Ports
from deriva_ml.core.definitions import MLVocab
from deriva_ml.core.errors import UnknownTerm, ValidationError
from deriva_ml.core.schema_defs import ColumnDef, TableDef
from deriva_ml.core.selectors import apply_selector
from deriva_ml.feature._model import Feature, find_features, lookup_feature, plan_feature_table
from deriva_ml.feature._records import FeatureRecord, build_record, record_class
from deriva_ml.services.schema import SchemaService

Selector = Callable[[Sequence[Any]], Any]


class FeatureService:
    """Features of one handle's catalog."""

    def __init__(self, ports: Ports, schema: SchemaService) -> None:
        self.ports = ports
        self.schema = schema
        self._classes: dict[Feature, type[FeatureRecord]] = {}
        self._term_maps: dict[tuple[str, str], dict[str, str]] = {}

    # ----------------------------------------------------------------------------------- tables

    def _table(self, table: str | TableDef) -> TableDef:
        if isinstance(table, TableDef):
            return table
        return self.schema.table(table)

    def create_feature(
        self,
        target_table: str | TableDef,
        feature_name: str,
        terms: Iterable[str | TableDef] = (),
        assets: Iterable[str | TableDef] = (),
        metadata: Iterable[ColumnDef | str | TableDef] = (),
        optional: Iterable[str] = (),
        comment: str = "",
    ) -> type[FeatureRecord]:
        """Create the feature table ``Execution_<Target>_<feature_name>`` and return its record class.

        ``terms`` are vocabularies and ``assets`` asset tables (one column each, named after the table);
        ``metadata`` are plain columns (``ColumnDef``), or more vocabularies/asset tables by name;
        ``optional`` lists the value columns that may be left empty.
        """
        if not isinstance(feature_name, str) or not feature_name:
            raise ValidationError(f"feature_name={feature_name!r} must be a non-empty name")
        target = self._table(target_table)
        term_tables = [self._table(t) for t in terms]
        asset_tables = [self._table(a) for a in assets]
        columns: list[ColumnDef] = []
        from deriva_ml.catalog.schema import is_asset, is_vocabulary

        for m in metadata:
            if isinstance(m, ColumnDef):
                columns.append(m)
                continue
            t = self._table(m)
            if is_vocabulary(t):
                term_tables.append(t)
            elif is_asset(t):
                asset_tables.append(t)
            else:
                raise ValidationError(
                    f"metadata={t.name!r}: a table given as metadata must be a vocabulary or an asset table; "
                    f"give plain value columns as ColumnDef(name, type)"
                )
        model = self.schema.model()
        table = plan_feature_table(
            model,
            target,
            feature_name,
            terms=term_tables,
            assets=asset_tables,
            metadata=columns,
            optional=list(optional),
            comment=comment,
        )
        self.schema.add_term(MLVocab.feature_name, feature_name, comment or f"Feature {feature_name}")
        self.ports.catalog.create_tables([table])
        return self.feature_record_class(target, feature_name)

    # ------------------------------------------------------------------------------- descriptions

    def find_features(self, table: str | TableDef | None = None) -> list[Feature]:
        model = self.schema.model()
        return find_features(model, None if table is None else self._table(table))

    def lookup_feature(self, table: str | TableDef, feature_name: str) -> Feature:
        model = self.schema.model()
        return lookup_feature(model, self._table(table), feature_name)

    def feature_record_class(self, table: str | TableDef, feature_name: str) -> type[FeatureRecord]:
        feature = self.lookup_feature(table, feature_name)
        cls = self._classes.get(feature)
        if cls is None:
            cls = self._classes[feature] = record_class(feature, self._resolve_term)
        return cls

    def _resolve_term(self, schema: str, vocab: str, name: str) -> str:
        """A term's name from its name or a synonym (the vocabulary is read once, again on a miss)."""
        key = (schema, vocab)
        for refresh in (False, True):
            known = self._term_maps.get(key)
            if known is None or refresh:
                vdef = self.schema.table(vocab, schema)
                terms = self.schema.vocab_terms(vdef, refresh=refresh)
                known = {}
                for t in terms.values():
                    for syn in t.synonyms:
                        known.setdefault(syn, t.name)
                known.update({t.name: t.name for t in terms.values()})
                self._term_maps[key] = known
            if name in known:
                return known[name]
        raise UnknownTerm(vocab, name, sorted(set(self._term_maps[key].values())))

    # ------------------------------------------------------------------------------------ values

    def list_feature_values(
        self,
        table: str | TableDef,
        feature_name: str,
        selector: Selector | None = None,
        *,
        execution_rids: Sequence[str] | None = None,
    ) -> list[FeatureRecord]:
        """The values of a feature as records (one query); with ``selector``, one value per target row.

        ``execution_rids`` keeps only the values those executions wrote (filtered by the catalog).
        """
        feature = self.lookup_feature(table, feature_name)
        cls = self.feature_record_class(feature.target_table, feature_name)
        return self._values(feature, cls, selector, execution_rids)

    def _values(
        self,
        feature: Feature,
        cls: type[FeatureRecord],
        selector: Selector | None,
        execution_rids: Sequence[str] | None = None,
    ) -> list[FeatureRecord]:
        if execution_rids is not None and not execution_rids:
            return []
        where = None if execution_rids is None else {"Execution": list(execution_rids)}
        ft = feature.feature_table
        rows = self.ports.catalog.query(ft.schema, ft.name, where)
        records = [build_record(cls, r) for r in rows]
        target = feature.target_column
        return apply_selector(records, lambda r: getattr(r, target), selector)

    def fetch_table_features(
        self,
        table: str | TableDef,
        feature_name: str | None = None,
        selector: Selector | None = None,
    ) -> dict[str, list[FeatureRecord]]:
        """Every feature of ``table`` (or only ``feature_name``) with its values: one query per feature."""
        features = self.find_features(table)
        if feature_name is not None:
            features = [self.lookup_feature(table, feature_name)]
        out: dict[str, list[FeatureRecord]] = {}
        for f in features:
            cls = self.feature_record_class(f.target_table, f.feature_name)
            out[f.feature_name] = self._values(f, cls, selector)
        return out
