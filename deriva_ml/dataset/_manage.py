"""Dataset management: soft delete, member removal, dataset types, element types, bag size estimates.

Takes the :class:`~deriva_ml.context.Ports` and the :class:`~deriva_ml.services.schema.SchemaService`
(never the facade); the version bump after a member removal is the facade's
(``increment_dataset_version``), like after an addition.

Member removal and old versions: a version is read at its catalog snapshot. On ERMrest a snapshot is the
catalog as it was, so the removed links are still there for the old version. On the embedded catalog the
SQLite adapter keeps every deleted row as a tombstone (``_dml_tombstones``: the row, the batch that
inserted it and the batch that deleted it) and reads at a snapshot include the rows deleted after it; so
an old version lists exactly the members it had. Values edited in place are not versioned on the
embedded catalog (docs/datasets.md, "Versions and snapshots").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from deriva_ml.catalog.port import create_missing_tables
from deriva_ml.context import Ports
from deriva_ml.core.definitions import ML_SCHEMA, MLVocab
from deriva_ml.core.effects import Batch, Delete, Insert, Update
from deriva_ml.core.errors import ValidationError
from deriva_ml.core.rid import RID, parse_rid, split_snapshot
from deriva_ml.core.schema_defs import CatalogModel, TableDef
from deriva_ml.dataset._plans import member_associations, new_member_association
from deriva_ml.services.schema import SchemaService


def _check_dataset(ports: Ports, schema: SchemaService, rid: RID) -> dict[str, Any]:
    rows = ports.catalog.query(ML_SCHEMA, "Dataset", {"RID": rid})
    if not rows:
        raise schema.not_in_table(rid, "Dataset")
    return rows[0]


# ------------------------------------------------------------------------------------------ delete


def plan_delete_datasets(rids: Sequence[RID]) -> Batch:
    """Mark datasets Deleted (the reference's soft delete: the rows and their versions stay)."""
    return Batch([Update(ML_SCHEMA, "Dataset", [{"RID": r, "Deleted": True} for r in rids])]) if rids else Batch(())


def delete_dataset(ports: Ports, schema: SchemaService, dataset_rid: str, *, recurse: bool = False) -> list[RID]:
    """Mark a dataset Deleted; ``recurse=True`` marks its nested datasets too. A dataset nested in another
    (not deleted) dataset is refused, as the reference does: remove it from its parents first.
    Requests: the dataset, its parents, one per nesting level with ``recurse``, one update."""
    rid = split_snapshot(parse_rid(dataset_rid, "dataset_rid"))[0]
    _check_dataset(ports, schema, rid)
    parent_links = ports.catalog.query(ML_SCHEMA, "Dataset_Dataset", {"Nested_Dataset": rid})
    if parent_links:
        parents = [r["Dataset"] for r in parent_links]
        alive = [
            r["RID"]
            for r in ports.catalog.query(ML_SCHEMA, "Dataset", {"RID": parents}, columns=["RID", "Deleted"])
            if not r.get("Deleted")
        ]
        if alive:
            raise ValidationError(
                f"dataset {rid} is nested in dataset(s) {alive}; remove it from them "
                "(delete_dataset_members) or delete them first"
            )
    todo = [rid]
    if recurse:
        frontier, seen = [rid], {rid}
        while frontier:
            nxt = []
            for r in ports.catalog.query(ML_SCHEMA, "Dataset_Dataset", {"Dataset": frontier}):
                child = RID(r["Nested_Dataset"])
                if child not in seen:
                    seen.add(child)
                    nxt.append(child)
            todo.extend(nxt)
            frontier = nxt
    ports.catalog.apply(plan_delete_datasets(todo))
    return todo


# ------------------------------------------------------------------------------------------ members


def plan_remove_members(
    dataset_rid: RID, found: Mapping[tuple[str, str], Sequence[RID]], associations: Mapping[tuple[str, str], Any]
) -> Batch:
    """One Delete per association table of the links (dataset, member) that exist."""
    effects = []
    for key in sorted(found):
        rids = list(dict.fromkeys(found[key]))
        if not rids:
            continue
        a = associations[key]
        effects.append(
            Delete(a.table.schema, a.table.name, a.member_column, rids, where={a.dataset_column: dataset_rid})
        )
    return Batch(effects)


def delete_dataset_members(
    ports: Ports, schema: SchemaService, dataset_rid: str, members: Sequence[str] | Mapping[str, Sequence[str]]
) -> int:
    """Remove members (RIDs, or ``{table: [rids]}``) from a dataset; returns how many links were removed.

    Requests: the dataset, one link query per membership table concerned (all of them for a plain list of
    RIDs), one delete per table — the ERMrest adapter splits a delete whose URL would exceed its budget
    (about 200 RIDs per request). The caller bumps the version."""
    rid = split_snapshot(parse_rid(dataset_rid, "dataset_rid"))[0]
    _check_dataset(ports, schema, rid)
    assoc = member_associations(ports.catalog.model())
    if isinstance(members, Mapping):
        wanted: dict[tuple[str, str] | None, list[RID]] = {}
        for name, rids in members.items():
            t = schema.table(name)
            key = (t.schema, t.name)
            if key not in assoc:
                raise ValidationError(
                    f"{t.qualified} rows are not dataset members (no Dataset_{t.name} association); "
                    f"member tables: {sorted(a.member.name for a in assoc.values())}"
                )
            wanted.setdefault(key, []).extend(
                parse_rid(r, f"members[{name!r}]") for r in ([rids] if isinstance(rids, str) else rids)
            )
    else:
        flat = [
            split_snapshot(parse_rid(r, "members"))[0] for r in ([members] if isinstance(members, str) else members)
        ]
        wanted = {None: flat}
    found: dict[tuple[str, str], list[RID]] = {}
    keys = sorted(assoc) if None in wanted else sorted(k for k in wanted if k is not None)
    for key in keys:
        a = assoc[key]
        rids = wanted.get(key) or wanted.get(None) or []
        if not rids:
            continue
        # the dataset's links of this table, filtered here: one request however many members are named
        want = set(rids)
        rows = ports.catalog.query(a.table.schema, a.table.name, {a.dataset_column: rid}, columns=[a.member_column])
        hits = [RID(r[a.member_column]) for r in rows if r[a.member_column] in want]
        if hits:
            found[key] = hits
    if None in wanted:
        placed = {r for v in found.values() for r in v}
        missing = [r for r in wanted[None] if r not in placed]
        if missing:
            raise ValidationError(f"{missing[:10]} are not members of dataset {rid}; nothing was removed")
    batch = plan_remove_members(rid, found, assoc)
    if batch.effects:
        ports.catalog.apply(batch)
    return sum(len(v) for v in found.values())


# ------------------------------------------------------------------------------------------ types


def add_dataset_types(ports: Ports, schema: SchemaService, dataset_rid: str, types: Iterable[str]) -> None:
    """Give a dataset more Dataset_Type terms (validated; ones it has already are kept once)."""
    rid = split_snapshot(parse_rid(dataset_rid, "dataset_rid"))[0]
    names = schema.validate_terms(MLVocab.dataset_type.value, types)
    _check_dataset(ports, schema, rid)
    rows = [{"Dataset": rid, "Dataset_Type": n} for n in names]
    if rows:
        ports.catalog.apply(Batch([Insert(ML_SCHEMA, "Dataset_Dataset_Type", rows, on_conflict_skip=True)]))


def remove_dataset_types(ports: Ports, schema: SchemaService, dataset_rid: str, types: Iterable[str]) -> None:
    """Remove Dataset_Type terms from a dataset (a type it does not have is an error naming the ones it has)."""
    rid = split_snapshot(parse_rid(dataset_rid, "dataset_rid"))[0]
    names = schema.validate_terms(MLVocab.dataset_type.value, types)
    _check_dataset(ports, schema, rid)
    have = {r["Dataset_Type"] for r in ports.catalog.query(ML_SCHEMA, "Dataset_Dataset_Type", {"Dataset": rid})}
    absent = [n for n in names if n not in have]
    if absent:
        raise ValidationError(f"dataset {rid} does not have type(s) {absent}; its types: {sorted(have)}")
    if names:
        ports.catalog.apply(
            Batch([Delete(ML_SCHEMA, "Dataset_Dataset_Type", "Dataset_Type", list(names), where={"Dataset": rid})])
        )


# ------------------------------------------------------------------------------------------ element types


def list_dataset_element_types(ports: Ports) -> list[TableDef]:
    """Tables whose rows can be dataset members now (those with a membership association), by name."""
    return sorted((a.member for a in member_associations(ports.catalog.model()).values()), key=lambda t: t.name)


def add_dataset_element_type(ports: Ports, schema: SchemaService, table: str) -> TableDef:
    """Create ``Dataset_<Table>`` so rows of ``table`` can be members (idempotent); returns the table."""
    t = schema.table(table)
    model = ports.catalog.model()
    if (t.schema, t.name) in member_associations(model):
        return t
    dataset = model.table(ML_SCHEMA, "Dataset")
    assert dataset is not None
    create_missing_tables(ports.catalog, [new_member_association(t, dataset)])  # a racing process may win
    return t


# ------------------------------------------------------------------------------------------ size


def summarize_bag(members: Mapping[str, Sequence[Mapping[str, Any]]], model: CatalogModel) -> dict[str, Any]:
    """Rows per table and asset bytes of a bag holding ``members`` (``list_dataset_members(recurse=True)``)."""
    from deriva_ml.catalog.schema import is_asset

    tables: dict[str, dict[str, Any]] = {}
    total_rows = total_bytes = 0
    for name, rows in sorted(members.items()):
        found = model.find(name)
        asset = bool(found) and is_asset(found[0])
        distinct = {r["RID"]: r for r in rows}
        nbytes = sum(int(r.get("Length") or 0) for r in distinct.values()) if asset else 0
        tables[name] = {"row_count": len(distinct), "is_asset": asset, "asset_bytes": nbytes}
        total_rows += len(distinct)
        total_bytes += nbytes
    return {
        "tables": tables,
        "total_rows": total_rows,
        "total_asset_bytes": total_bytes,
        "total_asset_size": _human(total_bytes),
    }


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover
