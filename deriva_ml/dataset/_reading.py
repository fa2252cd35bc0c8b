"""Reading a dataset's versions and members: the version rows, the nesting walk, the member rows at a
version's snapshot (``member_tree``, ``list_dataset_members``), on any :class:`~deriva_ml.services.Shell`.

Split from ``_datasets.py`` (which re-exports the public names).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from deriva_ml._log import get_logger
from deriva_ml.catalog.port import LinkedQueries
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.errors import NotFound, UnknownTable
from deriva_ml.core.graph import walk_levels
from deriva_ml.core.records import DatasetVersion
from deriva_ml.core.rid import RID, parse_rid
from deriva_ml.core.schema_defs import TableDef
from deriva_ml.dataset._plans import (
    MemberAssociation,
    current_version_row,
    find_version_row,
    member_associations,
)
from deriva_ml.services import Shell

if TYPE_CHECKING:
    pass


def _version_rows(ctx: Shell, dataset_rid: RID) -> list[dict[str, Any]]:
    """Every Dataset_Version row of a dataset; RIDNotFound when the dataset does not exist."""
    rows = ctx.ports.catalog.query(ML_SCHEMA, "Dataset_Version", {"Dataset": dataset_rid})
    if not rows and not ctx.ports.catalog.query(ML_SCHEMA, "Dataset", {"RID": dataset_rid}, columns=["RID"]):
        raise ctx._schema.not_in_table(dataset_rid, "Dataset")
    return rows


def _resolve_version(
    ctx: Shell, dataset_rid: RID, version: DatasetVersion | str | None
) -> tuple[DatasetVersion, Mapping[str, Any]]:
    """The version (None = current) and its Dataset_Version row (one request)."""
    return pick_version(_version_rows(ctx, dataset_rid), dataset_rid, version)


def pick_version(
    rows: Sequence[Mapping[str, Any]], dataset_rid: str, version: DatasetVersion | str | None
) -> tuple[DatasetVersion, Mapping[str, Any]]:
    """Among a dataset's Dataset_Version ``rows``: the version (None = current) and its row; NotFound naming
    the versions there are otherwise."""
    if version is None:
        row = current_version_row(rows)
        if row is None:
            raise NotFound(f"dataset {dataset_rid} has no version")
        return DatasetVersion.parse(row["Version"]), row
    v = DatasetVersion.parse(version)
    row = find_version_row(list(rows), v)
    if row is None:
        known = sorted(str(DatasetVersion.parse(r["Version"])) for r in rows if r.get("Version"))
        raise NotFound(f"dataset {dataset_rid} has no version {v}; its versions: {', '.join(known) or '(none)'}")
    return v, row


def resolve_version(
    ctx: Shell, dataset_rid: str, version: DatasetVersion | str | None = None
) -> tuple[DatasetVersion, Mapping[str, Any]]:
    """The version (None = current) of a dataset and its Dataset_Version row. One request."""
    return _resolve_version(ctx, parse_rid(dataset_rid, "dataset_rid"), version)


def _descendant_edges(ctx: Shell, start: Iterable[RID], snapshot: str | None = None) -> list[tuple[RID, RID]]:
    """Every (parent, child) Dataset_Dataset edge below ``start``, level by level (one request per level)."""
    return list(walk_levels(start, lambda frontier: _nesting_links(ctx, "Dataset", frontier, snapshot)).links)


def _nesting_links(ctx: Shell, column: str, frontier: list[RID], snapshot: str | None) -> list[tuple[RID, RID]]:
    """Dataset_Dataset links whose ``column`` (``Dataset``: downward, ``Nested_Dataset``: upward) is in the
    frontier, as ``(frontier side, other side)`` (one request)."""
    other = "Nested_Dataset" if column == "Dataset" else "Dataset"
    rows = ctx.ports.catalog.query(ML_SCHEMA, "Dataset_Dataset", {column: frontier}, snapshot=snapshot)
    return [(RID(r[column]), RID(r[other])) for r in rows]


def _member_links(
    ctx: Shell,
    dataset_rids: Sequence[RID],
    snapshot: str | None,
) -> dict[tuple[str, str], list[tuple[RID, RID]]]:
    """``(dataset, member)`` links of the given datasets, by member table, at ``snapshot``.

    One request per membership association table. An association that did not
    exist at the snapshot has no links then.
    """
    return {
        key: _association_links(ctx, a, dataset_rids, snapshot)
        for key, a in sorted(member_associations(ctx.ports.catalog.model()).items())
    }


def _association_links(
    ctx: Shell, a: MemberAssociation, dataset_rids: Sequence[RID], snapshot: str | None
) -> list[tuple[RID, RID]]:
    """``(dataset, member)`` links of one association (one request). An association created after
    ``snapshot`` has no links then (ERMrest answers 409 "does not exist": :class:`UnknownTable`)."""
    try:
        rows = ctx.ports.catalog.query(
            a.table.schema,
            a.table.name,
            {a.dataset_column: list(dataset_rids)},
            columns=[a.dataset_column, a.member_column],
            snapshot=snapshot,
        )
    except UnknownTable:
        if snapshot is None:
            raise
        return []
    return [(RID(r[a.dataset_column]), RID(r[a.member_column])) for r in rows]


def _fetch_rows(ctx: Shell, table: TableDef, rids: Sequence[RID], snapshot: str | None) -> list[dict[str, Any]]:
    """Rows of ``table`` with these RIDs, in RID order: one request."""
    if not rids:
        return []
    rows = ctx.ports.catalog.query(table.schema, table.name, {"RID": sorted(set(rids))}, snapshot=snapshot)
    rows.sort(key=lambda r: r["RID"])
    return rows


def _member_rows(
    ctx: Shell,
    a: MemberAssociation,
    dataset_rids: Sequence[RID],
    snapshot: str | None,
    *,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Rows of ``a``'s member table linked to any of ``dataset_rids`` at ``snapshot``, each once, in RID
    order, at most ``limit``.

    One request (``Catalog.query_linked``: the association joined to the member table on the server),
    however many members there are. An adapter that lacks it (a third-party or test adapter; ours both
    answer it) gets the links and then the rows (two requests). An association that did not exist at the
    snapshot has no members then.
    """
    if limit is not None and int(limit) <= 0:
        return []
    catalog = ctx.ports.catalog
    if not isinstance(catalog, LinkedQueries):
        links = _association_links(ctx, a, dataset_rids, snapshot)
        members = sorted(set(m for _, m in links))
        if limit is not None:
            members = members[: int(limit)]
        return _fetch_rows(ctx, a.member, members, snapshot) if members else []
    try:
        rows = catalog.query_linked(
            a.table.schema,
            a.table.name,
            {a.dataset_column: sorted(set(dataset_rids))},
            via=a.member_column,
            target_schema=a.member.schema,
            target_table=a.member.name,
            limit=None if limit is None else int(limit),
            snapshot=snapshot,
        )
    except UnknownTable:
        if snapshot is None:
            raise
        return []  # the association was created after the snapshot: no members then
    found: dict[str, dict[str, Any]] = {}
    for r in rows:
        found.setdefault(r["RID"], r)
    out = [found[k] for k in sorted(found)]
    return out if limit is None else out[: int(limit)]


@attrs.frozen
class MemberTree:
    """What a dataset version holds: the datasets of its tree and every member link at one snapshot."""

    dataset_rid: RID
    version: DatasetVersion
    snapshot: str | None
    datasets: tuple[RID, ...]  # the dataset first, then its descendants level by level
    edges: tuple[tuple[RID, RID], ...]  # Dataset_Dataset (parent, child) inside the tree
    links: Mapping[tuple[str, str], tuple[tuple[RID, RID], ...]]  # by member table: (dataset, member)
    associations: Mapping[tuple[str, str], MemberAssociation]

    def direct_members(self, dataset_rid: RID) -> dict[tuple[str, str], list[RID]]:
        return {k: [m for d, m in v if d == dataset_rid] for k, v in self.links.items()}

    def descendants(self, dataset_rid: RID) -> list[RID]:
        out: list[RID] = []
        frontier = [dataset_rid]
        seen = {dataset_rid}
        while frontier:
            nxt = []
            for p, c in self.edges:
                if p in frontier and c not in seen:
                    seen.add(c)
                    nxt.append(c)
                    out.append(c)
            frontier = nxt
        return out


def _version_snapshot(dataset_rid: RID, version: DatasetVersion, row: Mapping[str, Any]) -> str | None:
    """The snapshot a version's membership is read at (None, with a warning, for a version without one)."""
    snapshot = row.get("Snapshot") or None
    if snapshot is None:
        get_logger("deriva_ml.dataset").warning(
            "dataset version has no snapshot; reading the current catalog",
            dataset_rid=dataset_rid,
            version=str(version),
        )
    return snapshot


def member_tree(
    ctx: Shell,
    dataset_rid: RID,
    version: DatasetVersion | str | None,
    *,
    resolved: tuple[DatasetVersion, Mapping[str, Any]] | None = None,
) -> MemberTree:
    """Resolve a version (unless ``resolved`` gives it) and read its nested tree at its snapshot."""
    v, row = resolved if resolved is not None else _resolve_version(ctx, dataset_rid, version)
    snapshot = _version_snapshot(dataset_rid, v, row)
    edges = _descendant_edges(ctx, [dataset_rid], snapshot)
    datasets = [dataset_rid, *dict.fromkeys(c for _, c in edges if c != dataset_rid)]
    links = _member_links(ctx, datasets, snapshot)
    return MemberTree(
        dataset_rid=dataset_rid,
        version=v,
        snapshot=snapshot,
        datasets=tuple(datasets),
        edges=tuple(edges),
        links={k: tuple(x) for k, x in links.items()},
        associations=member_associations(ctx.ports.catalog.model()),
    )


def list_dataset_members(
    ctx: Shell,
    dataset_rid: str,
    version: DatasetVersion | str | None = None,
    *,
    recurse: bool = False,
    limit: int | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Member rows by table name, as they were at ``version`` (None = the current version).

    Every membership table appears (an empty list when the dataset has none of its rows). Nested
    datasets are under ``"Dataset"``; ``recurse=True`` adds the members of nested datasets (each row
    once). ``limit`` caps the rows per table. Rows are in RID order.

    Requests: one for the versions, one per membership table (the association joined to its member
    table on the server: constant in the number of members), and with ``recurse`` one per nesting
    level; all reads at the version's snapshot.
    """
    rid = parse_rid(dataset_rid, "dataset_rid")
    v, row = _resolve_version(ctx, rid, version)
    snapshot = _version_snapshot(rid, v, row)
    sources = [rid]
    if recurse:
        edges = _descendant_edges(ctx, [rid], snapshot)
        sources.extend(dict.fromkeys(c for _, c in edges if c != rid))
    out: dict[str, list[dict[str, Any]]] = {}
    for _, a in sorted(member_associations(ctx.ports.catalog.model()).items()):
        out.setdefault(a.member_name, []).extend(_member_rows(ctx, a, sources, snapshot, limit=limit))
    return out
