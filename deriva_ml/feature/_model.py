"""Features as data: the feature table's layout, and finding features in a catalog model (pure, no I/O).

A feature of a target table ``T`` called ``N`` is the association table ``Execution_T_N`` in ``T``'s schema
(the reference package's layout, so catalogs made by either package read the same):

- ``Execution`` (FK to ``deriva-ml:Execution.RID``), ``T`` (FK to ``T.RID``) and ``Feature_Name`` (FK to
  ``deriva-ml:Feature_Name.Name``, default ``N``): the associates, with a unique key over the three;
- one column per term vocabulary (named after the vocabulary, FK to its ``Name``), one per asset table
  (named after it, FK to its ``RID``), then the plain metadata columns.

Term and asset columns are NOT NULL unless listed in ``optional``; metadata columns keep their own nullability.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from deriva_ml.catalog.schema import association_columns, is_asset, is_vocabulary, reference
from deriva_ml.core.definitions import ML_SCHEMA, MLVocab
from deriva_ml.core.errors import NotFound, ValidationError
from deriva_ml.core.fields import str_tuple
from deriva_ml.core.schema_defs import SYSTEM_COLUMNS, CatalogModel, ColumnDef, ForeignKeyDef, KeyDef, TableDef

#: The provenance columns every feature table has besides the target's column.
EXECUTION_COLUMN = "Execution"
FEATURE_NAME_COLUMN = MLVocab.feature_name.value


class UnknownFeature(NotFound, KeyError):
    """A feature name a table does not have; names the features it does have."""

    def __init__(self, table: str, name: str, known: Iterable[str]) -> None:
        self.table = table
        self.feature_name = name
        known = sorted(known)
        shown = ", ".join(repr(k) for k in known) if known else "none are defined"
        super().__init__(f"table {table!r} has no feature {name!r}; its features: {shown}")

    def __str__(self) -> str:
        return str(self.args[0])


@attrs.frozen
class Feature:
    """A feature's description: which table it annotates, where its values live, what kind of columns.

    ``term_columns`` reference vocabularies (``term_tables`` maps each to its vocabulary), ``asset_columns``
    reference asset tables (``asset_tables`` likewise), ``value_columns`` hold plain values.
    """

    target_table: TableDef
    feature_name: str
    feature_table: TableDef
    term_columns: tuple[str, ...] = attrs.field(converter=str_tuple)
    asset_columns: tuple[str, ...] = attrs.field(converter=str_tuple)
    value_columns: tuple[str, ...] = attrs.field(converter=str_tuple)
    term_tables: tuple[tuple[str, str, str], ...] = ()  # (column, schema, vocabulary)
    asset_tables: tuple[tuple[str, str, str], ...] = ()  # (column, schema, asset table)

    @property
    def target_column(self) -> str:
        """The feature table's column holding the target row's RID (named after the target table)."""
        return self.target_table.name

    @property
    def feature_columns(self) -> tuple[str, ...]:
        """Every value column: terms, assets and plain values."""
        return (*self.term_columns, *self.asset_columns, *self.value_columns)

    @property
    def optional_columns(self) -> tuple[str, ...]:
        """Value columns that may be left empty."""
        return tuple(c for c in self.feature_columns if (cd := self.feature_table.column(c)) is not None and cd.nullok)


def feature_table_name(target: str, feature_name: str) -> str:
    return f"Execution_{target}_{feature_name}"


def plan_feature_table(
    model: CatalogModel,
    target: TableDef,
    feature_name: str,
    *,
    terms: Sequence[TableDef] = (),
    assets: Sequence[TableDef] = (),
    metadata: Sequence[ColumnDef] = (),
    optional: Sequence[str] = (),
    comment: str = "",
) -> TableDef:
    """The feature table to create (pure): checks every input against ``model`` and names what is wrong."""
    execution = model.table(ML_SCHEMA, "Execution")
    fname = model.table(ML_SCHEMA, FEATURE_NAME_COLUMN)
    if execution is None or fname is None:
        raise ValidationError(f"the catalog has no {ML_SCHEMA}:Execution or {ML_SCHEMA}:{FEATURE_NAME_COLUMN} table")
    name = feature_table_name(target.name, feature_name)
    if model.table(target.schema, name) is not None:
        raise ValidationError(f"feature {feature_name!r} of {target.name!r} already exists (table {name!r})")
    vocabularies = sorted(t.name for t in model.tables if is_vocabulary(t))
    asset_tables = sorted(t.name for t in model.tables if is_asset(t))
    bad_terms = [t.name for t in terms if not is_vocabulary(t)]
    if bad_terms:
        raise ValidationError(f"terms={bad_terms}: not vocabularies; vocabularies: {vocabularies}")
    bad_assets = [t.name for t in assets if not is_asset(t)]
    if bad_assets:
        raise ValidationError(f"assets={bad_assets}: not asset tables; asset tables: {asset_tables}")
    reserved = {*SYSTEM_COLUMNS, EXECUTION_COLUMN, FEATURE_NAME_COLUMN, target.name}
    value_names = [t.name for t in (*terms, *assets)] + [c.name for c in metadata]
    clash = sorted({n for n in value_names if n in reserved or value_names.count(n) > 1})
    if clash:
        raise ValidationError(
            f"feature {feature_name!r}: column name(s) {clash} repeat or collide with {sorted(reserved)}"
        )
    unknown_optional = sorted(set(optional) - set(value_names))
    if unknown_optional:
        raise ValidationError(f"optional={unknown_optional}: not columns of the feature; its columns: {value_names}")
    cols: list[ColumnDef] = []
    fks: list[ForeignKeyDef] = []
    for col, tgt, default in (
        (EXECUTION_COLUMN, execution, None),
        (target.name, target, None),
        (FEATURE_NAME_COLUMN, fname, feature_name),
    ):
        c, fk = reference(col, tgt, nullok=False)
        cols.append(attrs.evolve(c, default=default) if default is not None else c)
        fks.append(fk)
    for t in (*terms, *assets):
        c, fk = reference(t.name, t, nullok=t.name in optional)
        cols.append(c)
        fks.append(fk)
    for c in metadata:
        cols.append(attrs.evolve(c, nullok=True) if c.name in optional else c)
    return TableDef(
        schema=target.schema,
        name=name,
        columns=cols,
        keys=(KeyDef((EXECUTION_COLUMN, target.name, FEATURE_NAME_COLUMN)),),
        foreign_keys=fks,
        kind="association",
        comment=comment,
    )


def feature_of(model: CatalogModel, table: TableDef) -> Feature | None:
    """The :class:`Feature` that ``table`` implements, or None when it is not a feature table.

    A feature table is an association over ``Execution``, ``Feature_Name`` and one target table; the feature's
    name is the ``Feature_Name`` column's default (the reference's rule), else the table name's tail.
    """
    by_col = {fk.columns[0]: fk for fk in table.foreign_keys if len(fk.columns) == 1}
    ex = by_col.get(EXECUTION_COLUMN)
    fn = by_col.get(FEATURE_NAME_COLUMN)
    if ex is None or fn is None or (ex.pk_schema, ex.pk_table) != (ML_SCHEMA, "Execution"):
        return None
    if (fn.pk_schema, fn.pk_table) != (ML_SCHEMA, FEATURE_NAME_COLUMN):
        return None
    assoc = association_columns(table) or ()
    others = [c for c in assoc if c not in (EXECUTION_COLUMN, FEATURE_NAME_COLUMN)]
    if len(others) != 1:
        return None
    target_fk = by_col[others[0]]
    target = model.table(target_fk.pk_schema, target_fk.pk_table)
    if target is None:
        return None
    name_col = table.column(FEATURE_NAME_COLUMN)
    name = name_col.default if name_col is not None and isinstance(name_col.default, str) else None
    prefix = f"Execution_{target.name}_"
    if not name:
        name = table.name[len(prefix) :] if table.name.startswith(prefix) else table.name
    skip = {EXECUTION_COLUMN, FEATURE_NAME_COLUMN, target.name}
    terms: list[tuple[str, str, str]] = []
    assets: list[tuple[str, str, str]] = []
    for c in table.columns:
        fk = by_col.get(c.name)
        if c.name in skip or fk is None:
            continue
        ref = model.table(fk.pk_schema, fk.pk_table)
        if ref is not None and is_vocabulary(ref):
            terms.append((c.name, ref.schema, ref.name))
        elif ref is not None and is_asset(ref):
            assets.append((c.name, ref.schema, ref.name))
    special = skip | {c for c, _, _ in terms} | {c for c, _, _ in assets}
    values = [c.name for c in table.columns if c.name not in special]
    return Feature(
        target_table=target,
        feature_name=name,
        feature_table=table,
        term_columns=[c for c, _, _ in terms],
        asset_columns=[c for c, _, _ in assets],
        value_columns=values,
        term_tables=tuple(terms),
        asset_tables=tuple(assets),
    )


def find_features(model: CatalogModel, table: TableDef | None = None) -> list[Feature]:
    """Every feature in ``model`` (only those of ``table`` when given), sorted by target and name."""
    found = [f for t in model.tables if (f := feature_of(model, t)) is not None]
    if table is not None:
        found = [f for f in found if (f.target_table.schema, f.target_table.name) == (table.schema, table.name)]
    return sorted(found, key=lambda f: (f.target_table.schema, f.target_table.name, f.feature_name))


def lookup_feature(model: CatalogModel, table: TableDef, feature_name: str) -> Feature:
    """The feature ``feature_name`` of ``table``; :class:`UnknownFeature` names the table's features."""
    features = find_features(model, table)
    for f in features:
        if f.feature_name == feature_name:
            return f
    raise UnknownFeature(table.name, feature_name, [f.feature_name for f in features])


def feature_tables_for(model: CatalogModel, table: TableDef) -> list[TableDef]:
    """The feature tables annotating ``table`` (for bags: the feature values of a dataset's members)."""
    return [f.feature_table for f in find_features(model, table)]
