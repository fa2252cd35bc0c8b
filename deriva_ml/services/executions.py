"""Execution rows read back as records, and nesting (``Execution_Execution``): lookups, listings, links.

Takes :class:`~deriva_ml.context.Ports` and the :class:`~deriva_ml.services.schema.SchemaService`; the
walks are :func:`deriva_ml.core.graph.walk_levels` (one request per level), the nesting write is planned by
:func:`deriva_ml.core.plans.plan_add_nested`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deriva_ml.context import Ports
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.execution_rows import record_from_row
from deriva_ml.core.graph import reversed_links, walk_levels
from deriva_ml.core.plans import plan_add_nested
from deriva_ml.core.records import ExecutionRecord
from deriva_ml.core.rid import RID, parse_rid
from deriva_ml.core.status import Status
from deriva_ml.services.schema import SchemaService

#: Manifest state naming the Execution row it belongs to (the row's RCT: RIDs can repeat across catalogs).
IDENTITY = "execution_rct"


def lookup_execution(ports: Ports, schema: SchemaService, rid: str) -> ExecutionRecord:
    """The catalog's record of an execution."""
    rid = parse_rid(rid, "execution rid")
    rows = ports.catalog.query(ML_SCHEMA, "Execution", {"RID": rid})
    if not rows:
        raise schema.not_in_table(rid, "Execution")
    return record_from_row(rows[0])


def find_executions(
    ports: Ports, status: Status | str | None = None, *, parent: str | None = None
) -> list[ExecutionRecord]:
    """Executions by RID: all, only ``status``, and/or only the children of ``parent`` (one or two requests)."""
    where: dict[str, Any] = {"Status": Status.parse(status).value} if status is not None else {}
    if parent is not None:
        children = child_rids(ports, parent)
        if not children:
            return []
        where["RID"] = children
    return [record_from_row(r) for r in ports.catalog.query(ML_SCHEMA, "Execution", where or None, order_by=["RID"])]


def add_nested(ports: Ports, parent: RID, child: RID, sequence: int | None) -> None:
    """Link ``child`` under ``parent``, refusing a cycle (the child must not be the parent's ancestor).

    The parent's ancestors are read level by level (one request per level: one for a root), always
    afresh (another process may have nested the parent meanwhile); then one insert.
    """
    plan_add_nested(parent, child, sequence)  # self-links and bad sequences refused before any request
    up = walk_levels([parent], lambda frontier: _links(ports, "Nested_Execution", "Execution", frontier))
    ports.catalog.apply(plan_add_nested(parent, child, sequence, reversed_links(up.links)))


def list_nested(ports: Ports, execution_rid: str, *, recurse: bool = False) -> list[ExecutionRecord]:
    """Children in Sequence order (then RID); ``recurse`` adds grandchildren level by level."""
    return _walk(ports, parse_rid(execution_rid), "Execution", "Nested_Execution", recurse)


def list_parents(ports: Ports, execution_rid: str, *, recurse: bool = False) -> list[ExecutionRecord]:
    return _walk(ports, parse_rid(execution_rid), "Nested_Execution", "Execution", recurse)


def child_rids(ports: Ports, parent: str) -> list[RID]:
    """The RIDs of an execution's direct children, in Sequence order (then RID), each once (one request)."""
    return list(
        dict.fromkeys(c for _p, c in _links(ports, "Execution", "Nested_Execution", [parse_rid(parent, "parent")]))
    )


def _links(ports: Ports, from_col: str, to_col: str, frontier: list[RID]) -> list[tuple[RID, RID]]:
    rows = ports.catalog.query(ML_SCHEMA, "Execution_Execution", {from_col: frontier})
    rows.sort(key=lambda r: (r.get("Sequence") is None, r.get("Sequence") or 0, r[to_col]))
    return [(RID(r[from_col]), RID(r[to_col])) for r in rows]


def _walk(ports: Ports, start: RID, from_col: str, to_col: str, recurse: bool) -> list[ExecutionRecord]:
    """One links query per level, then one query for every Execution row found (not one per level)."""
    order: Sequence[RID] = walk_levels(
        [start], lambda frontier: _links(ports, from_col, to_col, frontier), recurse=recurse
    ).reached
    if not order:
        return []
    rows = {r["RID"]: r for r in ports.catalog.query(ML_SCHEMA, "Execution", {"RID": list(order)})}
    return [record_from_row(rows[t]) for t in order if t in rows]
