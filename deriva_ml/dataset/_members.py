"""Dataset membership: adding rows of any table to a dataset (shell code; plans in ``_plans.py``).

Placing RIDs in their tables in a number of requests that does not grow with the RIDs, creating the
``Dataset_<Table>`` association the first time a table's rows join, rejecting nesting cycles, linking,
and the minor version bump that freezes the new membership. Reading members is ``_reading.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from deriva_ml._log import get_logger
from deriva_ml.catalog.port import create_missing_tables
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.errors import UnknownTable, ValidationError
from deriva_ml.core.records import DatasetVersion
from deriva_ml.core.rid import RID, parse_rid, split_snapshot
from deriva_ml.core.schema_defs import TableDef
from deriva_ml.dataset._plans import (
    check_member_table,
    member_associations,
    nesting_cycle,
    new_member_association,
    plan_member_links,
)
from deriva_ml.dataset._reading import _descendant_edges, _resolve_version
from deriva_ml.dataset._versions import increment_dataset_version
from deriva_ml.services import Shell
from deriva_ml.services.schema import SYSTEM_SCHEMAS


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


__all__ = ["add_dataset_members"]
