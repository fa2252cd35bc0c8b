"""What goes into a dataset bag: pure decisions, no I/O and no clock reads.

The shell (``_bag_build.py``) gathers facts from the catalog (the version row, the dataset tree, the
model), calls :func:`plan_bag` and then walks the plan: member rows, the rows they reach by foreign key
(level by level: :func:`outbound_hops`, :func:`hop_keys`), and the feature values of members
(:func:`feature_tables`). The writer (``_bag_writer.py``) streams what the walk finds into CSVs,
``fetch.txt`` and the BagIt manifests.

What a bag holds (the reference package's export follows the outbound foreign keys of member tables and
adds the feature tables of members; so does this one, bounded):

* the member rows of every dataset of the tree, and the link rows that say which dataset holds them;
* every row reachable from those by following outbound foreign keys, transitively, into domain tables,
  vocabularies (also deriva-ml's: ``Dataset_Type``, ``Feature_Name`` ...) and deriva-ml's ``Execution``
  (who made a feature value or a version) — never further into deriva-ml's own tables (``Workflow``,
  nested executions, other datasets);
* the rows of every feature table of a member table whose target is a member (and, by the same rule,
  the terms, assets and executions they reference);
* the tree's ``Dataset``, ``Dataset_Version`` and ``Dataset_Dataset_Type`` rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from deriva_ml.catalog.schema import is_asset, is_vocabulary
from deriva_ml.core.codec import parse_json
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.errors import DerivaMLException
from deriva_ml.core.records import DatasetVersion
from deriva_ml.core.rid import RID
from deriva_ml.core.schema_defs import CatalogModel, ForeignKeyDef, TableDef

#: 2: membership as link CSVs (not in dataset.json), FK-reachable rows, feature values, Dataset_Version.
BAG_FORMAT = 2

#: Schemas that are not domain data.
_SYSTEM_SCHEMAS = frozenset({ML_SCHEMA, "public", "www", "WWW", "_ermrest", "_acl_admin"})
#: deriva-ml tables a bag follows foreign keys into besides vocabularies.
_ML_FOLLOWED = frozenset({"Execution"})

_INT_TYPES = frozenset({"int2", "int4", "int8", "serial2", "serial4", "serial8"})
_FLOAT_TYPES = frozenset({"float4", "float8"})
_JSON_TYPES = frozenset({"json", "jsonb", "text[]"})

TableKey = tuple[str, str]


class BagError(DerivaMLException):
    """A dataset bag could not be built, or a bag directory is not one of ours."""


# ------------------------------------------------------------------------------------------- names


def bag_name(dataset_rid: str, version: DatasetVersion, materialize: bool) -> str:
    """``Dataset_<RID>_<version>`` (``_metadata`` appended for a bag without asset bytes)."""
    return f"Dataset_{dataset_rid}_{version}" + ("" if materialize else "_metadata")


def asset_relpath(table: str, rid: str, filename: str | None) -> str:
    """Where an asset file goes, relative to the bag's ``data/``: ``assets/<Table>/<RID>/<Filename>``.

    The RID level keeps two assets with the same file name apart.
    """
    # plain string operations: pathlib interns every path part (a RID each), which grows with the rows
    name = str(filename or "").rstrip("/").rsplit("/", 1)[-1] or "file"
    if name in (".", ".."):
        name = "file"
    return f"assets/{table}/{rid}/{name}"


def csv_relpath(table: TableDef) -> str:
    """``<schema>/<table>.csv`` relative to the bag's ``data/``."""
    return f"{table.schema}/{table.name}.csv"


# ------------------------------------------------------------------------------------------- values


def csv_value(value: Any) -> str:
    """A cell as written to a bag CSV (None → empty; lists and dicts as sorted JSON)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict | tuple):
        return json.dumps(value, sort_keys=True)
    return str(value)


def decode_value(value: str, col_type: str | None) -> Any:
    """A CSV cell typed by the saved schema's column type (empty → None)."""
    if value == "":
        return None
    if col_type in _INT_TYPES:
        try:
            return int(value)
        except ValueError:
            return value
    if col_type in _FLOAT_TYPES:
        try:
            return float(value)
        except ValueError:
            return value
    if col_type == "boolean":
        return value.lower() in ("true", "t", "1")
    if col_type in _JSON_TYPES:
        try:
            return parse_json(value, "a bag's JSON column")
        except ValueError:
            return value
    return value


# ------------------------------------------------------------------------------------------- features


def feature_target_column(table: TableDef, target: TableDef) -> str | None:
    """The column of ``table`` holding the target row when ``table`` is a feature table of ``target``.

    A feature table (the reference's layout, ``Execution_<Target>_<Feature>``) associates a row of the
    target table (a single-column foreign key to its RID), a ``Feature_Name`` term and the ``Execution``
    that produced the value, plus value columns. ``None`` for any other table.
    """
    names = {c.name for c in table.columns}
    if not {"Feature_Name", "Execution"} <= names:
        return None
    for fk in table.foreign_keys:
        if (
            len(fk.columns) == 1
            and (fk.pk_schema, fk.pk_table) == (target.schema, target.name)
            and fk.pk_columns == ("RID",)
            and fk.columns[0] not in ("Feature_Name", "Execution")
        ):
            return fk.columns[0]
    return None


@attrs.frozen
class FeatureRead:
    """The values of one feature table for the members of its target table."""

    table: TableKey
    target: TableKey
    target_column: str


def feature_tables(model: CatalogModel, targets: Iterable[TableDef]) -> tuple[FeatureRead, ...]:
    """Every feature table of any of ``targets``, in (schema, name) order."""
    out: list[FeatureRead] = []
    for target in targets:
        for t in model.tables:
            col = feature_target_column(t, target)
            if col is not None:
                out.append(FeatureRead((t.schema, t.name), (target.schema, target.name), col))
    return tuple(sorted(set(out), key=lambda f: (f.table, f.target)))


# ------------------------------------------------------------------------------------------- hops


@attrs.frozen
class Hop:
    """An outbound foreign key a bag follows: rows of ``source`` reach rows of ``target`` whose
    ``target_column`` equals their ``column``."""

    source: TableKey
    column: str
    target: TableKey
    target_column: str


def may_follow(target: TableDef) -> bool:
    """Whether a bag follows a foreign key into ``target``: domain tables, any vocabulary, and
    deriva-ml's ``Execution``; not the rest of deriva-ml's tables nor ERMrest's own."""
    if is_vocabulary(target):
        return True
    if target.schema == ML_SCHEMA:
        return target.name in _ML_FOLLOWED
    return target.schema not in _SYSTEM_SCHEMAS


def outbound_hops(model: CatalogModel, table: TableDef) -> tuple[Hop, ...]:
    """The single-column outbound foreign keys of ``table`` a bag follows (see :func:`may_follow`)."""
    out: list[Hop] = []
    for fk in table.foreign_keys:
        hop = _hop(model, table, fk)
        if hop is not None:
            out.append(hop)
    return tuple(sorted(set(out), key=lambda h: (h.column, h.target)))


def _hop(model: CatalogModel, table: TableDef, fk: ForeignKeyDef) -> Hop | None:
    if len(fk.columns) != 1:
        return None
    target = model.table(fk.pk_schema, fk.pk_table)
    if target is None or not may_follow(target):
        return None
    if (target.schema, target.name) == (ML_SCHEMA, "Dataset"):
        return None  # datasets are the tree itself, read apart
    return Hop((table.schema, table.name), fk.columns[0], (target.schema, target.name), fk.pk_columns[0])


def hop_keys(rows: Iterable[Mapping[str, Any]], hop: Hop) -> set[str]:
    """The non-empty values of ``hop.column`` in ``rows`` (what to look up in the target table)."""
    return {str(v) for r in rows if (v := r.get(hop.column)) not in (None, "")}


# ------------------------------------------------------------------------------------------- fetch


@attrs.frozen
class FetchEntry:
    """One asset file of a bag: where the store keeps it, its checksum and size, and its path in the bag."""

    url: str  # the store URL (``/hatrac/...``), what ``store.get`` takes
    md5: str
    length: int
    rid: RID
    path: str  # relative to the bag directory: ``data/assets/<Table>/<RID>/<Filename>``


def fetch_entry(table: TableDef, row: Mapping[str, Any]) -> FetchEntry | None:
    """The file of an asset row, or None when the row lacks a URL, MD5 or length (not fetched)."""
    if not is_asset(table) or not row.get("URL") or not row.get("MD5") or row.get("Length") in (None, ""):
        return None
    return FetchEntry(
        url=str(row["URL"]),
        md5=str(row["MD5"]).lower(),
        length=int(row["Length"]),
        rid=RID(row["RID"]),
        path="data/" + asset_relpath(table.name, row["RID"], row.get("Filename")),
    )


# ------------------------------------------------------------------------------------------- the plan


@attrs.frozen
class MemberRead:
    """One membership association: its link rows (``dataset_column`` → ``member_column``) and the member table."""

    association: TableKey
    dataset_column: str
    member_column: str
    member: TableKey


@attrs.frozen
class BagPlan:
    """Everything decided before any row is read: what to read, follow and write, and the bag's metadata."""

    dataset_rid: RID
    version: DatasetVersion
    version_rid: RID | None
    snapshot: str | None
    materialize: bool
    created: str  # ISO timestamp (the injected clock's)
    host: str
    catalog_id: str
    datasets: tuple[RID, ...]
    edges: tuple[tuple[RID, RID], ...]
    members: tuple[MemberRead, ...]
    features: tuple[FeatureRead, ...]
    hops: Mapping[TableKey, tuple[Hop, ...]]
    name: str

    @property
    def metadata(self) -> dict[str, str]:
        """``bag-info.txt`` fields describing the dataset version."""
        return {
            "External-Description": f"deriva-ml dataset {self.dataset_rid} version {self.version}",
            "External-Identifier": f"{self.host}/{self.catalog_id}/{self.dataset_rid}@{self.version}",
            "Dataset-RID": str(self.dataset_rid),
            "Dataset-Version": str(self.version),
            "Catalog-Snapshot": str(self.snapshot or ""),
        }


def plan_bag(
    model: CatalogModel,
    *,
    dataset_rid: RID,
    version: DatasetVersion,
    version_row: Mapping[str, Any],
    datasets: Sequence[RID],
    edges: Sequence[tuple[RID, RID]],
    associations: Mapping[TableKey, Any],
    materialize: bool,
    now: datetime,
    host: str,
    catalog_id: str,
) -> BagPlan:
    """The plan of one bag. ``associations`` are the membership associations (``MemberAssociation``s by
    member table, from ``dataset._plans.member_associations``); ``now`` is the clock's reading."""
    members = tuple(
        MemberRead((a.table.schema, a.table.name), a.dataset_column, a.member_column, (a.member.schema, a.member.name))
        for _, a in sorted(associations.items())
    )
    member_defs = [model.table(*m.member) for m in members]
    targets = [t for t in member_defs if t is not None and (t.schema, t.name) != (ML_SCHEMA, "Dataset")]
    features = feature_tables(model, targets)
    hops: dict[TableKey, tuple[Hop, ...]] = {}
    for t in model.tables:
        h = outbound_hops(model, t)
        if h:
            hops[(t.schema, t.name)] = h
    return BagPlan(
        dataset_rid=dataset_rid,
        version=version,
        version_rid=version_row.get("RID"),
        snapshot=version_row.get("Snapshot") or None,
        materialize=materialize,
        created=now.isoformat(timespec="seconds"),
        host=host,
        catalog_id=catalog_id,
        datasets=tuple(datasets),
        edges=tuple(edges),
        members=members,
        features=features,
        hops=hops,
        name=bag_name(dataset_rid, version, materialize),
    )


def datasets_info(
    plan: BagPlan,
    dataset_rows: Iterable[Mapping[str, Any]],
    type_rows: Iterable[Mapping[str, Any]],
    version_rows: Iterable[Mapping[str, Any]],
) -> dict[str, dict[str, Any]]:
    """Description, types, version at the snapshot and children of every dataset of the tree."""
    from deriva_ml.dataset._plans import current_version_row

    info: dict[str, dict[str, Any]] = {
        r: {"description": "", "dataset_types": [], "version": None, "children": []} for r in plan.datasets
    }
    for p, c in plan.edges:
        if p in info and c not in info[p]["children"]:
            info[p]["children"].append(c)
    for row in dataset_rows:
        if row["RID"] in info:
            info[row["RID"]]["description"] = row.get("Description") or ""
    for t in type_rows:
        if t["Dataset"] in info:
            info[t["Dataset"]]["dataset_types"].append(t["Dataset_Type"])
    versions: dict[str, list[Mapping[str, Any]]] = {r: [] for r in plan.datasets}
    for v in version_rows:
        if v["Dataset"] in versions:
            versions[v["Dataset"]].append(v)
    for d in plan.datasets:
        info[d]["dataset_types"].sort()
        if d == plan.dataset_rid:
            info[d]["version"] = str(plan.version)
            continue
        vrow = current_version_row(versions[d])
        info[d]["version"] = str(DatasetVersion.parse(vrow["Version"])) if vrow else None
    return info


def bag_info(
    plan: BagPlan,
    datasets: Mapping[str, Any],
    tables: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """The content of ``data/dataset.json`` (small: no per-member entries; membership is in link CSVs)."""
    member_tables: dict[str, dict[str, str]] = {}
    for m in plan.members:
        member_tables[m.member[1]] = {
            "association": m.association[1],
            "dataset_column": m.dataset_column,
            "member_column": m.member_column,
        }
    return {
        "format": BAG_FORMAT,
        "dataset_rid": plan.dataset_rid,
        "version": str(plan.version),
        "version_rid": plan.version_rid,
        "snapshot": plan.snapshot,
        "materialized": plan.materialize,
        "catalog": {"host": plan.host, "catalog_id": plan.catalog_id},
        "created": plan.created,
        "datasets": dict(datasets),
        "member_tables": member_tables,
        "features": [
            {"table": f.table[1], "schema": f.table[0], "target": f.target[1], "target_column": f.target_column}
            for f in plan.features
        ],
        "tables": {k: dict(v) for k, v in sorted(tables.items())},
    }


__all__ = [
    "BAG_FORMAT",
    "BagError",
    "BagPlan",
    "FeatureRead",
    "FetchEntry",
    "Hop",
    "MemberRead",
    "asset_relpath",
    "bag_info",
    "bag_name",
    "csv_relpath",
    "csv_value",
    "datasets_info",
    "decode_value",
    "feature_tables",
    "feature_target_column",
    "fetch_entry",
    "hop_keys",
    "may_follow",
    "outbound_hops",
    "plan_bag",
]
