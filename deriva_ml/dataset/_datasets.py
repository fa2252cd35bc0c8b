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
from deriva_ml.catalog.port import create_missing_tables
from deriva_ml.core.definitions import ML_SCHEMA, MLVocab
from deriva_ml.core.errors import UnknownTable, ValidationError
from deriva_ml.core.graph import walk_levels
from deriva_ml.core.records import DatasetVersion
from deriva_ml.core.rid import RID, parse_rid, split_snapshot
from deriva_ml.core.schema_defs import TableDef
from deriva_ml.dataset._plans import (
    INITIAL_VERSION,
    as_names,
    check_member_table,
    current_version_row,
    member_associations,
    nesting_cycle,
    new_member_association,
    plan_create_dataset,
    plan_member_links,
    plan_new_version,
    plan_version_snapshot,
)
from deriva_ml.dataset._reading import MemberTree as MemberTree
from deriva_ml.dataset._reading import _descendant_edges, _nesting_links, _resolve_version, _version_rows
from deriva_ml.dataset._reading import _fetch_rows as _fetch_rows
from deriva_ml.dataset._reading import _member_rows as _member_rows
from deriva_ml.dataset._reading import list_dataset_members as list_dataset_members
from deriva_ml.dataset._reading import member_tree as member_tree
from deriva_ml.dataset._reading import resolve_version as resolve_version
from deriva_ml.services import Shell
from deriva_ml.services.schema import SYSTEM_SCHEMAS

if TYPE_CHECKING:
    from deriva_ml.dataset._bag import DatasetBag


# ------------------------------------------------------------------------------------------ records


@attrs.frozen
class DatasetRecord:
    """A dataset as the catalog knows it (a snapshot of its row, types and current version)."""

    dataset_rid: RID
    description: str = ""
    dataset_types: tuple[str, ...] = ()
    current_version: DatasetVersion | None = None
    deleted: bool = False


@attrs.frozen(order=False)
class DatasetHistory:
    """One ``Dataset_Version`` row: a version, when it was made (snapshot), by which execution, why."""

    dataset_rid: RID
    dataset_version: DatasetVersion
    version_rid: RID
    description: str = ""
    execution_rid: RID | None = None
    snapshot: str | None = None
    minid: str | None = None
    timestamp: str | None = None


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
    records the snapshot in the version row (see :func:`_record_snapshot`).
    """
    types = ctx._schema.validate_terms(MLVocab.dataset_type.value, as_names(dataset_types))
    v = INITIAL_VERSION if version is None else DatasetVersion.parse(version)
    exe = parse_rid(execution_rid, "execution_rid") if execution_rid else None
    result = ctx.ports.catalog.apply(plan_create_dataset(description or "", types, v, exe))
    rid = result.rids["dataset"]
    _record_snapshot(ctx, result.rids["version"])
    get_logger("deriva_ml.dataset").info("dataset created", dataset_rid=rid, version=str(v), types=list(types))
    record = DatasetRecord(dataset_rid=rid, description=description or "", dataset_types=types, current_version=v)
    return Dataset(ctx, record, execution_rid=exe)


# ------------------------------------------------------------------------------------------ lookup


def current_version(ctx: Shell, dataset_rid: str) -> DatasetVersion:
    """The current (highest) version of a dataset. One request."""
    v, _ = _resolve_version(ctx, parse_rid(dataset_rid, "dataset_rid"), None)
    return v


def dataset_history(ctx: Shell, dataset_rid: str) -> list[DatasetHistory]:
    """Every version of a dataset, oldest first. One request."""
    rid = parse_rid(dataset_rid, "dataset_rid")
    out = [
        DatasetHistory(
            dataset_rid=rid,
            dataset_version=DatasetVersion.parse(r["Version"]),
            version_rid=RID(r["RID"]),
            description=r.get("Description") or "",
            execution_rid=r.get("Execution"),
            snapshot=r.get("Snapshot"),
            minid=r.get("Minid"),
            timestamp=r.get("RCT"),
        )
        for r in _version_rows(ctx, rid)
    ]
    return sorted(out, key=lambda h: h.dataset_version)


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


# ------------------------------------------------------------------------------------------ versions


def increment_dataset_version(
    ctx: Shell,
    dataset_rid: str,
    component: str,
    description: str = "",
    *,
    execution_rid: str | None = None,
) -> DatasetVersion:
    """Make a new version (``component`` is major, minor or patch) that freezes the dataset as it is now.

    Requests: one to read the versions, one batch (the Dataset_Version row and the ``Dataset.Version``
    pointer), one snapshot read and one update recording it (:func:`_record_snapshot`). A concurrent
    bump to the same number raises ConflictError (the (Dataset, Version) key) and changes nothing.
    """
    rid = parse_rid(dataset_rid, "dataset_rid")
    INITIAL_VERSION.bump(str(getattr(component, "value", component)))  # validate before any I/O
    exe = parse_rid(execution_rid, "execution_rid") if execution_rid else None
    current, _ = _resolve_version(ctx, rid, None)
    new = current.bump(str(getattr(component, "value", component)))
    result = ctx.ports.catalog.apply(plan_new_version(rid, new, description or f"{component} version bump", exe))
    snapshot = _record_snapshot(ctx, result.rids["version"])
    get_logger("deriva_ml.dataset").info(
        "dataset version", dataset_rid=rid, version=str(new), previous=str(current), snapshot=snapshot
    )
    return new


def _record_snapshot(ctx: Shell, version_rid: RID) -> str:
    """Take the version's snapshot now that its Dataset_Version row and the ``Dataset.Version`` pointer
    exist, and write it into the row (two requests). Read at that snapshot, the catalog shows the
    dataset at this version (a bag of 0.3.0 says 0.3.0). The reference package does the same (insert the
    version rows, read ``snaptime``, update ``Snapshot``), though before moving the pointer; older rows
    whose snapshot precedes their own version row are read as they are (see docs/datasets.md)."""
    snapshot = ctx.ports.catalog.snapshot()
    ctx.ports.catalog.apply(plan_version_snapshot(version_rid, snapshot))
    return snapshot


# ------------------------------------------------------------------------------------------ members


def _member_candidates(ctx: Shell) -> list[TableDef]:
    """Tables whose rows can be members: domain tables and deriva-ml's Dataset and File (not ERMrest's own
    ``public`` tables such as ``ERMrest_Client``)."""
    model = ctx.ports.catalog.model()
    out = []
    for t in model.tables:
        if t.schema in SYSTEM_SCHEMAS and t.schema != ML_SCHEMA:
            continue
        try:
            check_member_table(t)
        except ValidationError:
            continue
        out.append(t)
    return out


#: A candidate table is read whole (its RIDs only) when it returns fewer rows than this many times the
#: RIDs still to place; a larger table is asked for the RIDs themselves (a filtered query the adapter
#: splits by URL budget). Either way, one logical request per candidate table.
_SCAN_FACTOR = 20


def _resolve_member_tables(ctx: Shell, rids: Sequence[RID]) -> dict[tuple[str, str], list[RID]]:
    """Which table each RID is in, in a number of requests that does not grow with the RIDs.

    With no more RIDs than candidate member tables, each is resolved on its own (``resolve_rid``).
    Otherwise each candidate table is asked once, until every RID is placed: for its RIDs (``columns=RID``,
    at most ``_SCAN_FACTOR`` x the RIDs still unplaced: one request whatever their number), or, when the
    table is larger than that, for the unplaced RIDs themselves. A RID found nowhere is resolved on its
    own; it is not a member candidate (or does not exist), so the first one ends the look-up with an error.
    """
    found: dict[tuple[str, str], list[RID]] = {}
    todo = list(dict.fromkeys(rids))
    candidates = _member_candidates(ctx)
    if len(todo) > len(candidates):
        remaining = set(todo)
        for t in candidates:
            if not remaining:
                break
            cap = _SCAN_FACTOR * len(remaining) + 1
            rows = ctx.ports.catalog.query(t.schema, t.name, columns=["RID"], limit=cap)
            if len(rows) >= cap:
                rows = ctx.ports.catalog.query(t.schema, t.name, {"RID": sorted(remaining)}, columns=["RID"])
            for row in rows:
                if row["RID"] in remaining:
                    found.setdefault((t.schema, t.name), []).append(RID(row["RID"]))
                    remaining.discard(row["RID"])
        todo = [r for r in todo if r in remaining]
    placed = {(t.schema, t.name) for t in candidates}
    for r in todo:
        key = ctx._schema.resolve_rid(r)
        found.setdefault(key, []).append(r)
        if key not in placed:
            break  # not a member table: add_dataset_members raises for it
    return found


def _group_members(
    ctx: Shell, members: Sequence[str] | Mapping[str, Sequence[str]]
) -> dict[tuple[str, str], list[RID]]:
    if isinstance(members, Mapping):
        grouped: dict[tuple[str, str], list[RID]] = {}
        for table_name, rids in members.items():
            if isinstance(rids, str):
                rids = [rids]
            t = ctx._schema.table(table_name)
            grouped.setdefault((t.schema, t.name), []).extend(
                split_snapshot(parse_rid(r, f"members[{table_name!r}]"))[0] for r in rids
            )
        return grouped
    if isinstance(members, str):
        members = [members]
    flat: list[RID] = [split_snapshot(parse_rid(r, "members"))[0] for r in members]
    return _resolve_member_tables(ctx, flat)


def add_dataset_members(
    ctx: Shell,
    dataset_rid: str,
    members: Sequence[str] | Mapping[str, Sequence[str]],
    *,
    description: str = "",
    execution_rid: str | None = None,
) -> DatasetVersion:
    """Add rows of any table(s) to a dataset and make a new minor version; returns the version after.

    ``members`` is a list of RIDs (each RID's table is looked up) or ``{table_name: [rids]}``. Datasets
    become nested datasets (a link that would make a cycle is rejected before anything is written).
    The association ``Dataset_<Table>`` is created in the member table's schema the first time rows of
    that table are added. Adding members that are all already present changes nothing and keeps the
    version.

    Requests: one for the versions, the RID look-ups (see :func:`_resolve_member_tables`: at most one per
    candidate table; none with the dict form), one per nesting level for datasets, one DDL when a new
    association is needed, one batch of links, then the version bump (see
    :func:`increment_dataset_version`).
    """
    rid = parse_rid(dataset_rid, "dataset_rid")
    exe = parse_rid(execution_rid, "execution_rid") if execution_rid else None
    current, _ = _resolve_version(ctx, rid, None)
    grouped = _group_members(ctx, members)
    if not grouped:
        return current
    model = ctx.ports.catalog.model()
    for key in grouped:
        t = model.table(*key)
        if t is None:
            raise UnknownTable(f"{key[0]}:{key[1]}")
        check_member_table(t)
    nested = grouped.get((ML_SCHEMA, "Dataset"), [])
    if nested:
        if rid in nested:
            raise ValidationError(f"dataset {rid} cannot be a member of itself")
        bad = nesting_cycle(rid, nested, _descendant_edges(ctx, nested))
        if bad is not None:
            raise ValidationError(f"nesting dataset {bad} under {rid} would create a cycle")
    assoc = member_associations(model)
    missing = [key for key in grouped if key not in assoc]
    if missing:
        dataset_table = model.table(ML_SCHEMA, "Dataset")
        assert dataset_table is not None
        new_tables = []
        for key in sorted(missing):
            member_table = model.table(*key)
            assert member_table is not None
            new_tables.append(new_member_association(member_table, dataset_table))
        new_tables = create_missing_tables(ctx.ports.catalog, new_tables)  # a racing process may have won
        get_logger("deriva_ml.dataset").info("dataset member tables", created=[t.qualified for t in new_tables])
        assoc = member_associations(ctx.ports.catalog.model())
    result = ctx.ports.catalog.apply(plan_member_links(rid, grouped, assoc))
    added = sum(len(rows) for rows in result.inserted)
    log = get_logger("deriva_ml.dataset")
    if added == 0:
        log.info("dataset members already present", dataset_rid=rid, version=str(current))
        return current
    counts = {f"{k[1]}": len(set(v)) for k, v in grouped.items()}
    new = increment_dataset_version(ctx, rid, "minor", description or f"Added members: {counts}", execution_rid=exe)
    log.info("dataset members added", dataset_rid=rid, added=added, version=str(new))
    return new


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
