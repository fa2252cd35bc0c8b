"""Pure planning for datasets: which rows to write, which association holds which members.

No I/O here: every function takes what the shell gathered (rows, the catalog model) and returns effects
or plain data. The shell (``_datasets.py``) applies the batches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from deriva_ml.catalog.schema import association_columns, association_table, is_association, is_vocabulary
from deriva_ml.core.definitions import ML_SCHEMA, MLVocab
from deriva_ml.core.effects import Batch, Effect, Insert, Ref, Update
from deriva_ml.core.errors import ValidationError
from deriva_ml.core.graph import nesting_cycle as nesting_cycle  # the one cycle check
from deriva_ml.core.records import DatasetVersion
from deriva_ml.core.redact import redact_description
from deriva_ml.core.rid import RID
from deriva_ml.core.schema_defs import CatalogModel, TableDef

#: deriva-ml tables that may be dataset members (others in the ML schema are provenance, not data).
ML_MEMBER_TABLES = frozenset({"Dataset", "File"})
#: Associations of Dataset that are not membership.
_NOT_MEMBERSHIP = frozenset({"Dataset_Dataset_Type", "Dataset_Execution"})
INITIAL_VERSION = DatasetVersion(0, 1, 0)


@attrs.frozen
class MemberAssociation:
    """An association ``table`` linking ``dataset_column`` (a Dataset RID) to ``member_column``.

    ``member`` is the member table (``Dataset`` for nested datasets through ``Dataset_Dataset``).
    """

    table: TableDef
    dataset_column: str
    member_column: str
    member: TableDef

    @property
    def member_name(self) -> str:
        return self.member.name


def member_associations(model: CatalogModel) -> dict[tuple[str, str], MemberAssociation]:
    """Every membership association of ``deriva-ml:Dataset``, by the member table's (schema, name).

    A membership association is a two-column association with one foreign key to ``Dataset.RID`` and one
    to the member table's RID (``Dataset_Dataset`` links ``Dataset`` to ``Nested_Dataset``).
    """
    out: dict[tuple[str, str], MemberAssociation] = {}
    for t in model.tables:
        if t.schema == ML_SCHEMA and t.name in _NOT_MEMBERSHIP:
            continue
        cols = association_columns(t)
        if cols is None or len(cols) != 2:
            continue
        targets = {fk.columns[0]: (fk.pk_schema, fk.pk_table) for fk in t.foreign_keys if len(fk.columns) == 1}
        if t.schema == ML_SCHEMA and t.name == "Dataset_Dataset":
            ds = model.table(ML_SCHEMA, "Dataset")
            if ds is not None:
                out[(ML_SCHEMA, "Dataset")] = MemberAssociation(t, "Dataset", "Nested_Dataset", ds)
            continue
        ds_cols = [c for c in cols if targets.get(c) == (ML_SCHEMA, "Dataset")]
        if len(ds_cols) != 1:
            continue
        (other,) = [c for c in cols if c != ds_cols[0]]
        target = model.table(*targets[other])
        if target is None or is_vocabulary(target):
            continue
        key = (target.schema, target.name)
        # prefer the conventionally named association when there are several
        if key not in out or t.name == f"Dataset_{target.name}":
            out[key] = MemberAssociation(t, ds_cols[0], other, target)
    return out


def check_member_table(table: TableDef) -> None:
    """Raise unless rows of ``table`` can be dataset members."""
    if table.schema == ML_SCHEMA and table.name not in ML_MEMBER_TABLES:
        raise ValidationError(
            f"rows of {table.qualified} cannot be dataset members; in the {ML_SCHEMA} schema only "
            f"{sorted(ML_MEMBER_TABLES)} can (domain tables can)"
        )
    if is_vocabulary(table) or is_association(table):
        raise ValidationError(f"rows of {table.qualified} cannot be dataset members: it is a vocabulary or association")


def new_member_association(table: TableDef, dataset: TableDef) -> TableDef:
    """The association ``Dataset_<Table>`` (columns ``Dataset``, ``<Table>``) in the member's schema."""
    check_member_table(table)
    return association_table(table.schema, [("Dataset", dataset), (table.name, table)])


def plan_create_dataset(
    description: str,
    dataset_types: Sequence[str],
    version: DatasetVersion,
    execution_rid: RID | None,
    snapshot: str | None = None,
    version_description: str = "Created",
) -> Batch:
    """One batch: the Dataset row, its types, its first Dataset_Version row and the Version pointer.

    Labels: ``dataset`` (the Dataset RID) and ``version`` (the Dataset_Version RID). The version's
    Snapshot is normally written afterwards (:func:`plan_version_snapshot`), with a snapshot taken once
    the version row exists; ``snapshot`` sets it now instead.
    """
    effects: list[Effect] = [
        Insert(
            ML_SCHEMA,
            "Dataset",
            [{"Description": redact_description(description), "Deleted": False}],
            labels=["dataset"],
        ),
    ]
    if dataset_types:
        effects.append(
            Insert(
                ML_SCHEMA,
                "Dataset_Dataset_Type",
                [{"Dataset": Ref("dataset"), MLVocab.dataset_type.value: t} for t in dict.fromkeys(dataset_types)],
            )
        )
    effects.extend(_version_effects(Ref("dataset"), version, version_description, execution_rid, snapshot))
    return Batch(effects)


def plan_new_version(
    dataset_rid: RID,
    version: DatasetVersion,
    description: str,
    execution_rid: RID | None,
    snapshot: str | None = None,
) -> Batch:
    """One batch: a Dataset_Version row (label ``version``) and ``Dataset.Version`` pointing at it
    (Snapshot as in :func:`plan_create_dataset`)."""
    return Batch(_version_effects(dataset_rid, version, description, execution_rid, snapshot))


def plan_version_snapshot(version_rid: RID, snapshot: str) -> Batch:
    """Record the snapshot of a version taken after its Dataset_Version row and ``Dataset.Version`` pointer
    were written, so the catalog read at that snapshot already shows the version it belongs to."""
    return Batch([Update(ML_SCHEMA, "Dataset_Version", [{"RID": version_rid, "Snapshot": snapshot}])])


def _version_effects(
    dataset: RID | Ref, version: DatasetVersion, description: str, execution_rid: RID | None, snapshot: str | None
) -> list[Effect]:
    row: dict[str, Any] = {
        "Dataset": dataset,
        "Version": str(version),
        "Description": redact_description(description),
        "Execution": execution_rid,
    }
    if snapshot is not None:
        row["Snapshot"] = snapshot
    return [
        Insert(ML_SCHEMA, "Dataset_Version", [row], labels=["version"]),
        Update(ML_SCHEMA, "Dataset", [{"RID": dataset, "Version": Ref("version")}]),
    ]


def plan_member_links(
    dataset_rid: RID, members: Mapping[tuple[str, str], Sequence[RID]], associations: Mapping[tuple[str, str], Any]
) -> Batch:
    """Idempotent inserts of membership links, one Insert per association table."""
    effects: list[Effect] = []
    for key in sorted(members):
        rids = list(dict.fromkeys(members[key]))
        if not rids:
            continue
        a: MemberAssociation = associations[key]
        effects.append(
            Insert(
                a.table.schema,
                a.table.name,
                [{a.dataset_column: dataset_rid, a.member_column: r} for r in rids],
                on_conflict_skip=True,
            )
        )
    return Batch(effects)


def current_version_row(rows: Sequence[Mapping[str, Any]], pointer: str | None = None) -> Mapping[str, Any] | None:
    """The Dataset_Version row that is current: the one ``pointer`` names, else the highest version."""
    if pointer is not None:
        for r in rows:
            if r.get("RID") == pointer:
                return r
    best: Mapping[str, Any] | None = None
    best_v: DatasetVersion | None = None
    for r in rows:
        try:
            v = DatasetVersion.parse(r.get("Version"))
        except ValidationError:
            continue
        if best_v is None or v > best_v:
            best, best_v = r, v
    return best


def find_version_row(rows: Sequence[Mapping[str, Any]], version: DatasetVersion) -> Mapping[str, Any] | None:
    for r in rows:
        try:
            if DatasetVersion.parse(r.get("Version")) == version:
                return r
        except ValidationError:
            continue
    return None


def as_names(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """``None`` → (), a string → (it,), an iterable of strings → tuple."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    out = tuple(value)
    for v in out:
        if not isinstance(v, str):
            raise ValidationError(f"dataset_types must be strings; got {v!r}")
    return out


__all__ = [
    "INITIAL_VERSION",
    "ML_MEMBER_TABLES",
    "MemberAssociation",
    "as_names",
    "check_member_table",
    "current_version_row",
    "find_version_row",
    "member_associations",
    "nesting_cycle",
    "new_member_association",
    "plan_create_dataset",
    "plan_member_links",
    "plan_new_version",
    "plan_version_snapshot",
]
