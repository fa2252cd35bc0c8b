"""Analysing a downloaded bag: features, denormalised joins, and asset folders for training code.

Pure functions over the bag's model and rows (the only I/O is reading the bag's CSVs through
:class:`~deriva_ml.dataset._bag.DatasetBag` and, in :func:`restructure_assets`, creating the links).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from deriva_ml.catalog.schema import is_asset, is_vocabulary
from deriva_ml.core.errors import NotFound, ValidationError
from deriva_ml.core.schema_defs import SYSTEM_COLUMNS, CatalogModel, TableDef
from deriva_ml.core.selectors import apply_selector, select_majority_vote, select_newest
from deriva_ml.dataset._bag_plan import BagError

if TYPE_CHECKING:
    from deriva_ml.dataset._bag import DatasetBag

Selector = Callable[[Sequence[Any]], Any]


# ------------------------------------------------------------------------------------------- dataframes


def to_dataframe(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> Any:
    """A pandas DataFrame of ``rows`` with ``columns`` (in that order, even when there are no rows)."""
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError("get_table_as_dataframe needs pandas: pip install 'deriva-ml[pandas]'") from exc
    return pd.DataFrame([[r.get(c) for c in columns] for r in rows], columns=list(columns))


# ------------------------------------------------------------------------------------------- features


@attrs.frozen
class BagFeature:
    """A feature table the bag holds values of: which table it annotates and its kinds of value columns."""

    feature_name: str
    target_table: str
    feature_table: str
    schema: str
    target_column: str
    term_columns: tuple[str, ...]
    asset_columns: tuple[str, ...]
    value_columns: tuple[str, ...]


def feature_name_of(table: str, target: str) -> str:
    """``Execution_<Target>_<Feature>`` (the reference's naming) → ``<Feature>``; else the table name."""
    prefix = f"Execution_{target}_"
    return table[len(prefix) :] if table.startswith(prefix) and len(table) > len(prefix) else table


def describe_feature(model: CatalogModel, table: TableDef, target: str, target_column: str) -> BagFeature:
    """The columns of a feature table by kind: terms (FK to a vocabulary), assets, plain values."""
    terms: list[str] = []
    assets: list[str] = []
    fk_of = {fk.columns[0]: fk for fk in table.foreign_keys if len(fk.columns) == 1}
    skip = {target_column, "Feature_Name", "Execution", *SYSTEM_COLUMNS}
    values: list[str] = []
    for c in table.columns:
        if c.name in skip:
            continue
        fk = fk_of.get(c.name)
        t = model.table(fk.pk_schema, fk.pk_table) if fk else None
        if t is not None and is_vocabulary(t):
            terms.append(c.name)
        elif t is not None and is_asset(t):
            assets.append(c.name)
        else:
            values.append(c.name)
    return BagFeature(
        feature_name=feature_name_of(table.name, target),
        target_table=target,
        feature_table=table.name,
        schema=table.schema,
        target_column=target_column,
        term_columns=tuple(terms),
        asset_columns=tuple(assets),
        value_columns=tuple(values),
    )


def bag_features(bag: DatasetBag) -> list[BagFeature]:
    out = []
    for f in bag._info.get("features", []):
        if f["table"] not in bag._info["tables"]:
            continue
        tdef = bag.model.table(f["schema"], f["table"])
        if tdef is not None:
            out.append(describe_feature(bag.model, tdef, f["target"], f["target_column"]))
    return sorted(out, key=lambda f: (f.target_table, f.feature_name))


_RECORD_CLASSES: dict[tuple[BagFeature, tuple[str, ...]], type] = {}


def record_class(feature: BagFeature, columns: Sequence[str]) -> type:
    """A frozen attrs class with one attribute per column and ``feature`` as a class attribute (what
    selectors read to find the term column)."""
    key = (feature, tuple(columns))
    cls = _RECORD_CLASSES.get(key)
    if cls is None:
        name = re.sub(r"\W", "_", f"{feature.feature_table}Record")
        cls = attrs.make_class(name, {c: attrs.field(default=None) for c in columns}, frozen=True)
        cls.feature = feature  # type: ignore[attr-defined]
        _RECORD_CLASSES[key] = cls
    return cls


def feature_values(bag: DatasetBag, feature: BagFeature, selector: Selector | None) -> list[Any]:
    """The feature's records whose target is a member of the bag's dataset (recursively), RID order;
    with ``selector``, one record per target row (the selector's pick; ``None`` drops the row)."""
    members = bag._member_rids(recurse=True).get(feature.target_table, set())
    tdef = bag.table_def(feature.feature_table)
    cls = record_class(feature, tdef.column_names)
    records = [
        cls(**r)
        for r in sorted(bag.iter_table(feature.feature_table), key=lambda r: r["RID"])
        if r.get(feature.target_column) in members
    ]
    return apply_selector(records, lambda r: getattr(r, feature.target_column), selector)


# ------------------------------------------------------------------------------------------- denormalize


@attrs.frozen
class Join:
    """Rows of ``source`` join rows of ``target`` where ``source.column == target.target_column``."""

    source: str
    column: str
    target: str
    target_column: str


def plan_joins(model: CatalogModel, tables: Sequence[TableDef]) -> tuple[str, tuple[Join, ...]]:
    """The root table (the included table that reaches the most others by outbound foreign keys; ties: the
    first given) and the joins from it, breadth first. ValidationError when some table is not reached."""
    names = {t.name for t in tables}
    by_name = {t.name: t for t in tables}

    def joins_from(root: str) -> list[Join]:
        out: list[Join] = []
        seen = {root}
        frontier = [root]
        while frontier:
            nxt = []
            for s in frontier:
                for fk in by_name[s].foreign_keys:
                    if len(fk.columns) == 1 and fk.pk_table in names and fk.pk_table not in seen:
                        seen.add(fk.pk_table)
                        nxt.append(fk.pk_table)
                        out.append(Join(s, fk.columns[0], fk.pk_table, fk.pk_columns[0]))
            frontier = nxt
        return out

    best = max((t.name for t in tables), key=lambda n: len(joins_from(n)))
    joins = joins_from(best)
    reached = {best, *(j.target for j in joins)}
    if reached != names:
        raise ValidationError(
            f"denormalize: {sorted(names - reached)} cannot be joined to {sorted(reached)} along foreign keys "
            f"starting at {best!r}; include tables linked by foreign keys (e.g. Image and the Subject it references)"
        )
    return best, tuple(joins)


def _tables(bag: DatasetBag, include: Sequence[str]) -> list[TableDef]:
    if not include:
        raise ValidationError(f"denormalize: name at least one table; the bag has {bag.list_tables()}")
    out = []
    for name in include:
        if name not in bag._info["tables"]:
            raise NotFound(f"denormalize: table {name!r} is not in this bag; tables: {bag.list_tables()}")
        out.append(bag.table_def(name))
    return out


def denormalize_columns(bag: DatasetBag, include: Sequence[str]) -> list[str]:
    return [f"{t.name}.{c}" for t in _tables(bag, include) for c in t.column_names]


def denormalize(bag: DatasetBag, include: Sequence[str]) -> list[dict[str, Any]]:
    """See :meth:`DatasetBag.denormalize_as_dict`."""
    tables = _tables(bag, include)
    root, joins = plan_joins(bag.model, tables)
    members = bag._member_rids(recurse=True)
    root_rows = list(bag.iter_table(root))
    if root in members:
        root_rows = [r for r in root_rows if r["RID"] in members[root]]
    index: dict[tuple[str, str], dict[Any, dict[str, Any]]] = {}
    for j in joins:
        key = (j.target, j.target_column)
        if key not in index:
            index[key] = {r.get(j.target_column): r for r in bag.iter_table(j.target)}
    columns = {t.name: t.column_names for t in tables}
    out = []
    for r in sorted(root_rows, key=lambda r: r["RID"]):
        joined: dict[str, dict[str, Any] | None] = {root: r}
        for j in joins:
            src = joined.get(j.source)
            value = src.get(j.column) if src else None
            joined[j.target] = index[(j.target, j.target_column)].get(value) if value is not None else None
        row: dict[str, Any] = {}
        for t in tables:
            src = joined.get(t.name)
            for c in columns[t.name]:
                row[f"{t.name}.{c}"] = src.get(c) if src else None
        out.append(row)
    return out


# ------------------------------------------------------------------------------------------- restructure


def _label_source(
    bag: DatasetBag, asset: TableDef, spec: str, selector: Selector | None
) -> Callable[[dict[str, Any]], Any]:
    """How to read one ``group_by`` level for an asset row: a column of the asset table, ``Table.Column`` or
    a column of a table the asset references, or a feature of the asset table (its single term or value)."""
    if "." not in spec and asset.column(spec) is not None:
        return lambda r: r.get(spec)
    features = {f.feature_name: f for f in bag.find_features(asset.name)}
    if spec in features:
        f = features[spec]
        cols = f.term_columns or f.value_columns
        if len(cols) != 1:
            raise ValidationError(
                f"group_by {spec!r}: the feature has columns {list(cols)}; name one as a table column"
            )
        col = cols[0]
        picks = {
            getattr(v, f.target_column): getattr(v, col) for v in feature_values(bag, f, selector or select_newest)
        }
        return lambda r: picks.get(r["RID"])
    table_name, _, column = spec.rpartition(".")
    for fk in asset.foreign_keys:
        if len(fk.columns) != 1 or fk.pk_table not in bag._info["tables"]:
            continue
        target = bag.table_def(fk.pk_table)
        if (table_name and fk.pk_table != table_name) or (
            target.column(column) is None and column not in target.column_names
        ):
            continue
        rows = {r.get(fk.pk_columns[0]): r for r in bag.iter_table(fk.pk_table)}
        src = fk.columns[0]
        return lambda r: (rows.get(r.get(src)) or {}).get(column)
    raise ValidationError(
        f"group_by {spec!r}: not a column of {asset.name} ({[c.name for c in asset.columns]}), a feature of it "
        f"({sorted(features)}) or a 'Table.Column' of a table it references"
    )


def _safe_label(value: Any) -> str:
    text = str(value).strip().replace(os.sep, "_")
    return text if text not in ("", ".", "..") else "Unknown"


def restructure_assets(
    bag: DatasetBag,
    output_dir: Path,
    asset_table: str,
    group_by: Sequence[str],
    *,
    use_symlinks: bool = True,
    by_dataset_type: bool = False,
    selector: Selector | None = None,
    missing: str = "unknown",
) -> Path:
    """Lay out the asset files of the bag's dataset (members of ``asset_table``, recursively) as
    ``output_dir/[<dataset type>/...]<label>/.../<file>``.

    Each ``group_by`` entry adds one folder level: a column of the asset table, ``Table.Column`` of a
    table it references (its Subject's ``Subject.Species``), or a feature of the asset table (its term or
    value; several values of one asset are reduced by ``selector``, default the newest). With
    ``by_dataset_type``, the types of the nested datasets holding an asset come first (``Training/``,
    ``Testing/``). An asset without a label goes to ``Unknown/`` (``missing="unknown"``), is left out
    (``"skip"``) or is an error (``"error"``). Files are symlinks to the bag's files (``use_symlinks``) or
    copies; a name taken twice in a folder gets its RID as a prefix. The bag must be materialized.
    """
    if missing not in ("unknown", "skip", "error"):
        raise ValidationError(f"missing={missing!r}: valid values are 'unknown', 'skip', 'error'")
    if asset_table not in bag._info["tables"] or not is_asset(bag.table_def(asset_table)):
        assets = sorted(n for n in bag.list_tables() if is_asset(bag.table_def(n)))
        raise NotFound(f"restructure_assets: {asset_table!r} is not an asset table of this bag; asset tables: {assets}")
    asset = bag.table_def(asset_table)
    labels = [_label_source(bag, asset, g, selector) for g in group_by]
    members = bag._member_rids(recurse=True).get(asset_table)
    rows = [r for r in bag.iter_table(asset_table) if members is None or r["RID"] in members]
    type_path = _type_paths(bag) if by_dataset_type else {}
    leaf = _leaf_datasets(bag, asset_table) if by_dataset_type else {}
    output_dir.mkdir(parents=True, exist_ok=True)
    for r in sorted(rows, key=lambda r: r["RID"]):
        src = Path(r["Filename"]) if r.get("Filename") else None
        if src is None or not src.is_absolute() or not src.is_file():
            raise BagError(
                f"restructure_assets: {asset_table} {r['RID']} has no file in {bag.path}; download the bag with "
                "materialize=True"
            )
        parts = list(type_path.get(leaf.get(r["RID"], ""), [])) if by_dataset_type else []
        skip = False
        for spec, label in zip(group_by, labels, strict=True):
            value = label(r)
            if value is None or value == "":
                if missing == "error":
                    raise ValidationError(f"restructure_assets: {asset_table} {r['RID']} has no {spec!r}")
                if missing == "skip":
                    skip = True
                    break
                value = "Unknown"
            parts.append(_safe_label(value))
        if skip:
            continue
        folder = output_dir.joinpath(*parts)
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / src.name
        if dest.exists() or dest.is_symlink():
            dest = folder / f"{r['RID']}_{src.name}"
        if use_symlinks:
            os.symlink(src, dest)
        else:
            shutil.copyfile(src, dest)
    return output_dir


def _type_paths(bag: DatasetBag) -> dict[str, list[str]]:
    """Dataset RID → the types of the nested datasets from below the bag's dataset down to it."""
    out: dict[str, list[str]] = {bag.dataset_rid: []}
    frontier = [bag]
    while frontier:
        nxt = []
        for d in frontier:
            for c in d.list_dataset_children():
                if c.dataset_rid not in out:
                    out[c.dataset_rid] = [*out[d.dataset_rid], c.dataset_types[0] if c.dataset_types else "Unknown"]
                    nxt.append(c)
        frontier = nxt
    return out


def _leaf_datasets(bag: DatasetBag, asset_table: str) -> dict[str, str]:
    """Asset RID → the deepest dataset of the tree that holds it directly."""
    depth = {d: len(p) for d, p in _type_paths(bag).items()}
    out: dict[str, str] = {}
    for d in sorted(depth, key=lambda x: depth[x]):
        view = bag if d == bag.dataset_rid else type(bag)(bag.path, d)
        for rid in view._member_rids(recurse=False).get(asset_table, set()):
            out[rid] = d  # deeper datasets come later and win
    return out


__all__ = [
    "BagFeature",
    "Join",
    "apply_selector",
    "denormalize",
    "feature_values",
    "plan_joins",
    "restructure_assets",
    "select_majority_vote",
    "select_newest",
]
