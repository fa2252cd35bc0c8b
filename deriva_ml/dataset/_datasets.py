"""Datasets: versioned collections of catalog rows (shell code; decisions live in ``_plans.py``).

A dataset is a ``deriva-ml:Dataset`` row; its members are rows of other tables linked through
``Dataset_<Table>`` associations (``Dataset_Dataset`` for nested datasets). Every version is a
``Dataset_Version`` row carrying the catalog ``Snapshot`` taken when it was made; reading a version reads
the membership *at that snapshot*, so a version keeps its members after newer versions add more.
See ``docs/datasets.md``.

Request counts below are catalog round trips (what matters on ERMrest; the embedded catalog is local).
Lists of any length are passed to the catalog as they are: splitting a request whose URL would be too
long is the ERMrest adapter's job (its byte budget), not this module's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from deriva_ml._log import get_logger
from deriva_ml.core.definitions import ML_SCHEMA, MLVocab
from deriva_ml.core.graph import walk_levels
from deriva_ml.core.records import DatasetVersion
from deriva_ml.core.rid import RID, parse_rid, split_snapshot
from deriva_ml.dataset._members import add_dataset_members as add_dataset_members
from deriva_ml.dataset._plans import INITIAL_VERSION, as_names, current_version_row, plan_create_dataset
from deriva_ml.dataset._reading import MemberTree as MemberTree
from deriva_ml.dataset._reading import _fetch_rows as _fetch_rows
from deriva_ml.dataset._reading import _member_rows as _member_rows
from deriva_ml.dataset._reading import _nesting_links, _resolve_version
from deriva_ml.dataset._reading import list_dataset_members as list_dataset_members
from deriva_ml.dataset._reading import member_tree as member_tree
from deriva_ml.dataset._reading import resolve_version as resolve_version
from deriva_ml.dataset._records import DatasetHistory as DatasetHistory
from deriva_ml.dataset._records import DatasetRecord as DatasetRecord
from deriva_ml.dataset._versions import current_version as current_version
from deriva_ml.dataset._versions import dataset_history as dataset_history
from deriva_ml.dataset._versions import increment_dataset_version as increment_dataset_version
from deriva_ml.dataset._versions import record_snapshot
from deriva_ml.services import Shell

if TYPE_CHECKING:
    from deriva_ml.dataset._bag import DatasetBag


class Dataset:
    """A dataset bound to its catalog: a frozen :class:`DatasetRecord` plus the ports and services it came from.

    Reading a field reads the record; methods that change the dataset (adding members, a new version)
    write through the catalog and then swap in the evolved record.
    """

    __slots__ = ("_ctx", "_execution_rid", "_record")

    def __init__(self, ctx: Shell, record: DatasetRecord, *, execution_rid: RID | None = None) -> None:
        self._ctx = ctx
        self._record = record
        self._execution_rid = execution_rid

    # fields ------------------------------------------------------------------------------------
    @property
    def record(self) -> DatasetRecord:
        return self._record

    @property
    def dataset_rid(self) -> RID:
        return self._record.dataset_rid

    @property
    def description(self) -> str:
        return self._record.description

    @property
    def dataset_types(self) -> tuple[str, ...]:
        return self._record.dataset_types

    @property
    def current_version(self) -> DatasetVersion | None:
        return self._record.current_version

    @property
    def execution_rid(self) -> RID | None:
        """The execution that created this dataset (when it was created through one)."""
        return self._execution_rid

    # operations --------------------------------------------------------------------------------
    def add_dataset_members(
        self, members: Sequence[str] | Mapping[str, Sequence[str]], description: str = ""
    ) -> DatasetVersion:
        """Add members (see :func:`add_dataset_members`); returns the dataset's version afterwards."""
        v = add_dataset_members(
            self._ctx, self.dataset_rid, members, description=description, execution_rid=self._execution_rid
        )
        self._record = attrs.evolve(self._record, current_version=v)
        return v

    def list_dataset_members(
        self, version: DatasetVersion | str | None = None, recurse: bool = False, limit: int | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        return list_dataset_members(self._ctx, self.dataset_rid, version, recurse=recurse, limit=limit)

    def list_dataset_children(
        self, recurse: bool = False, version: DatasetVersion | str | None = None
    ) -> list[Dataset]:
        return list_dataset_children(self._ctx, self.dataset_rid, recurse=recurse, version=version)

    def list_dataset_parents(self, recurse: bool = False) -> list[Dataset]:
        return list_dataset_parents(self._ctx, self.dataset_rid, recurse=recurse)

    def increment_dataset_version(self, component: str, description: str = "") -> DatasetVersion:
        v = increment_dataset_version(
            self._ctx, self.dataset_rid, component, description, execution_rid=self._execution_rid
        )
        self._record = attrs.evolve(self._record, current_version=v)
        return v

    def dataset_history(self) -> list[DatasetHistory]:
        return dataset_history(self._ctx, self.dataset_rid)

    def download_dataset_bag(self, version: DatasetVersion | str | None = None, materialize: bool = True) -> DatasetBag:
        from deriva_ml.core.records import DatasetSpec

        spec = DatasetSpec(rid=self.dataset_rid, version=version, materialize=materialize)
        return self._ctx.download_dataset_bag(spec)  # type: ignore[no-any-return]

    # identity ----------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if isinstance(other, Dataset):
            return self.dataset_rid == other.dataset_rid
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.dataset_rid)

    def __repr__(self) -> str:
        r = self._record
        return (
            f"Dataset(rid={r.dataset_rid!r}, version={str(r.current_version) if r.current_version else None!r}, "
            f"types={list(r.dataset_types)!r}, description={r.description!r})"
        )


# ------------------------------------------------------------------------------------------ create


def create_dataset(
    ctx: Shell,
    dataset_types: str | Sequence[str] | None = None,
    description: str = "",
    version: DatasetVersion | str | None = None,
    *,
    execution_rid: str | None = None,
) -> Dataset:
    """Create a dataset: its row, types and first version (default 0.1.0) in one batch.

    Requests: the type lookup (cached per vocabulary), one batch, one snapshot read, one update that
    records the snapshot in the version row (see :func:`~deriva_ml.dataset._versions.record_snapshot`).
    """
    types = ctx._schema.validate_terms(MLVocab.dataset_type.value, as_names(dataset_types))
    v = INITIAL_VERSION if version is None else DatasetVersion.parse(version)
    exe = parse_rid(execution_rid, "execution_rid") if execution_rid else None
    result = ctx.ports.catalog.apply(plan_create_dataset(description or "", types, v, exe))
    rid = result.rids["dataset"]
    record_snapshot(ctx, result.rids["version"])
    get_logger("deriva_ml.dataset").info("dataset created", dataset_rid=rid, version=str(v), types=list(types))
    record = DatasetRecord(dataset_rid=rid, description=description or "", dataset_types=types, current_version=v)
    return Dataset(ctx, record, execution_rid=exe)


# ------------------------------------------------------------------------------------------ lookup


def _datasets_from_rows(ctx: Shell, rows: Sequence[Mapping[str, Any]]) -> list[Dataset]:
    """Dataset handles for Dataset rows: types and current versions in one request each."""
    if not rows:
        return []
    rids = [r["RID"] for r in rows]
    types: dict[str, list[str]] = {r: [] for r in rids}
    versions: dict[str, list[dict[str, Any]]] = {r: [] for r in rids}
    for t in ctx.ports.catalog.query(ML_SCHEMA, "Dataset_Dataset_Type", {"Dataset": rids}):
        types[t["Dataset"]].append(t[MLVocab.dataset_type.value])
    for v in ctx.ports.catalog.query(ML_SCHEMA, "Dataset_Version", {"Dataset": rids}):
        versions[v["Dataset"]].append(v)
    out = []
    for r in rows:
        vrow = current_version_row(versions[r["RID"]], r.get("Version"))
        record = DatasetRecord(
            dataset_rid=RID(r["RID"]),
            description=r.get("Description") or "",
            dataset_types=tuple(sorted(types[r["RID"]])),
            current_version=DatasetVersion.parse(vrow["Version"]) if vrow else None,
            deleted=bool(r.get("Deleted")),
        )
        out.append(Dataset(ctx, record))
    return out


def lookup_dataset(ctx: Shell, dataset_rid: str) -> Dataset:
    """The dataset with this RID (RIDNotFound otherwise). Three requests."""
    rid, _ = split_snapshot(parse_rid(dataset_rid, "dataset_rid"))
    rows = ctx.ports.catalog.query(ML_SCHEMA, "Dataset", {"RID": rid})
    if not rows:
        raise ctx._schema.not_in_table(rid, "Dataset")
    return _datasets_from_rows(ctx, rows)[0]


def find_datasets(ctx: Shell, *, deleted: bool = False) -> list[Dataset]:
    """Every dataset (without the deleted ones unless ``deleted=True``), in RID order."""
    rows = ctx.ports.catalog.query(ML_SCHEMA, "Dataset", order_by=["RID"])
    if not deleted:
        rows = [r for r in rows if not r.get("Deleted")]
    return _datasets_from_rows(ctx, rows)


# ------------------------------------------------------------------------------------------ nesting


def list_dataset_children(
    ctx: Shell,
    dataset_rid: str,
    *,
    recurse: bool = False,
    version: DatasetVersion | str | None = None,
) -> list[Dataset]:
    """Nested datasets at ``version`` (None = current version); ``recurse`` adds their descendants."""
    rid = parse_rid(dataset_rid, "dataset_rid")
    _, row = _resolve_version(ctx, rid, version)
    snapshot = row.get("Snapshot") or None
    walk = walk_levels([rid], lambda frontier: _nesting_links(ctx, "Dataset", frontier, snapshot), recurse=recurse)
    return _datasets_by_rid(ctx, [c for c in walk.reached if c != rid])


def list_dataset_parents(ctx: Shell, dataset_rid: str, *, recurse: bool = False) -> list[Dataset]:
    """Datasets this one is nested in (now); ``recurse`` adds their ancestors."""
    rid = parse_rid(dataset_rid, "dataset_rid")
    walk = walk_levels([rid], lambda frontier: _nesting_links(ctx, "Nested_Dataset", frontier, None), recurse=recurse)
    return _datasets_by_rid(ctx, list(walk.reached))


def _datasets_by_rid(ctx: Shell, rids: Sequence[RID]) -> list[Dataset]:
    if not rids:
        return []
    rows = {r["RID"]: r for r in ctx.ports.catalog.query(ML_SCHEMA, "Dataset", {"RID": list(rids)})}
    return _datasets_from_rows(ctx, [rows[r] for r in rids if r in rows])


__all__ = [
    "Dataset",
    "DatasetHistory",
    "DatasetRecord",
    "MemberTree",
    "add_dataset_members",
    "create_dataset",
    "current_version",
    "dataset_history",
    "find_datasets",
    "increment_dataset_version",
    "list_dataset_children",
    "list_dataset_members",
    "list_dataset_parents",
    "lookup_dataset",
    "member_tree",
    "resolve_version",
]
