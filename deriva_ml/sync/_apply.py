"""Writing a group to the target catalog, and redoing a group an interrupted run left *in flight*.

A redo applies the group effect by effect against what the target holds: a row to insert is first looked
for among the target's rows that did not exist at the recorded snapshot and have the same values; a row
found is adopted, a row not found is inserted. Updates, deletes and ``on_conflict_skip`` inserts are applied
again (idempotent); a compare-and-set whose row already holds the new value counts as done. Plain
``Execution.Status`` updates of old journals become compare-and-set effects against the target's status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from deriva_ml.core.codec import effect_from_json, effect_to_json
from deriva_ml.core.effects import Batch, Delete, Effect, Insert, Ref, Update, resolve_refs
from deriva_ml.core.errors import ConfigurationError, ConflictError, NotFound
from deriva_ml.core.rid import RID
from deriva_ml.sync._plan import _plain_status_update

if TYPE_CHECKING:
    from deriva_ml.catalog.port import Catalog

#: Column types compared when a redo looks for a row already written (exact on both backends).
_EXACT_TYPES = frozenset({"text", "markdown", "longtext", "ermrest_rid", "int2", "int4", "int8", "boolean", "serial4"})


def _status_as_cas(batch: Batch, target: Catalog) -> Batch:
    """Plain updates of ``Execution.Status`` (journals written before status writes were compare-and-set)
    as the codec's compare-and-set effect (kind ``set_status``), expecting the status the target holds now;
    a row that already holds the new status (a redo) gets only its other columns. Built through the codec's
    JSON form: with a codec that has no such kind, the plain update is kept."""
    effects: list[Effect] = []
    for e in batch.effects:
        if (
            not isinstance(e, Update)
            or not _plain_status_update(e)
            or any(isinstance(v, Ref) for r in e.rows for v in r.values())
        ):
            effects.append(e)
            continue
        rids = [r["RID"] for r in e.rows]
        held = {
            r["RID"]: r.get("Status") for r in target.query(e.schema, e.table, {"RID": rids}, columns=["RID", "Status"])
        }
        writes, rest = [], []
        for r in e.rows:
            if "Status" not in r or held.get(r["RID"]) == r["Status"]:
                other = {k: v for k, v in r.items() if k != "Status"}
                if len(other) > 1:
                    rest.append(other)
                continue
            writes.append(
                {
                    "rid": r["RID"],
                    "expected": held.get(r["RID"]) or "Created",
                    "status": r["Status"],
                    "detail": r.get("Status_Detail") or "",
                    "duration": r.get("Duration"),
                }
            )
            other = {k: v for k, v in r.items() if k not in ("Status", "Status_Detail", "Duration")}
            if len(other) > 1:
                rest.append(other)
        try:
            cas = effect_from_json({"kind": "set_status", "writes": writes, "skip_lost": False}) if writes else None
        except ConfigurationError:  # this codec has no compare-and-set: the adapters take plain updates
            effects.append(e)
            continue
        if rest:
            effects.append(Update(e.schema, e.table, rest, key=e.key))
        if cas is not None:
            effects.append(cas)
    return Batch(tuple(effects))


def _resolve(effect: Effect, rids: Mapping[str, RID]) -> Effect:
    if isinstance(effect, Insert):
        return attrs.evolve(effect, rows=[resolve_refs(r, rids) for r in effect.rows])
    if isinstance(effect, Update):
        return attrs.evolve(effect, rows=[resolve_refs(r, rids) for r in effect.rows])
    if isinstance(effect, Delete):
        values = list(resolve_refs({str(i): v for i, v in enumerate(effect.values)}, rids).values())
        return Delete(effect.schema, effect.table, effect.column, values, resolve_refs(effect.where, rids))
    return effect


def _find_written(
    target: Catalog,
    effect: Insert,
    row: Mapping[str, Any],
    skip: set[str],
    snapshot: str,
    claimed: set[str],
) -> RID | None:
    """A target row that has ``row``'s values and did not exist at ``snapshot`` (and is not claimed yet)."""
    table = target.model().table(effect.schema, effect.table)
    types = {c.name: c.type for c in table.columns} if table is not None else {}
    where = {
        c: v
        for c, v in row.items()
        if c not in skip and v is not None and types.get(c) in _EXACT_TYPES and not isinstance(v, float)
    }
    hits = [r["RID"] for r in target.query(effect.schema, effect.table, where, columns=["RID"])]
    hits = [h for h in hits if h not in claimed]
    if not hits:
        return None
    before = {
        r["RID"] for r in target.query(effect.schema, effect.table, {"RID": hits}, columns=["RID"], snapshot=snapshot)
    }
    new = [h for h in hits if h not in before]
    return RID(new[0]) if new else None


def _redo(target: Catalog, batch: Batch, snapshot: str) -> dict[str, RID]:
    """Apply ``batch`` effect by effect so that what an interrupted attempt already wrote is not written twice."""
    rids: dict[str, RID] = {}
    claimed: set[str] = set()
    effects = batch.effects
    for idx, effect in enumerate(effects):
        later = effects[idx + 1 :]
        if isinstance(effect, Insert) and not effect.on_conflict_skip:
            # columns a later effect of the group may have changed since this row was written
            skip = {
                c
                for e in later
                if isinstance(e, Update) and (e.schema, e.table) == (effect.schema, effect.table)
                for r in e.rows
                for c in r
                if c not in e.key
            }
            rows, labels = [], []
            for j, r in enumerate(effect.rows):
                row = resolve_refs(r, rids)
                label = effect.labels[j] if effect.labels else None
                found = _find_written(target, effect, row, skip, snapshot, claimed)
                if found is not None:
                    claimed.add(found)
                    if label is not None:
                        rids[label] = found
                else:
                    rows.append(row)
                    labels.append(label)
            if rows:
                result = target.apply(Batch((Insert(effect.schema, effect.table, rows, labels=labels),)))
                rids.update(result.rids)
                claimed.update(str(r["RID"]) for rs in result.inserted for r in rs)
            continue
        resolved = _resolve(effect, rids)
        if not isinstance(resolved, Insert | Update | Delete):
            doc = effect_to_json(resolved)
            if "skip_lost" in doc:  # a compare-and-set the first attempt may have applied already
                resolved = effect_from_json({**doc, "skip_lost": True})
        try:
            result = target.apply(Batch((resolved,)))
        except NotFound:
            deleted_later = any(
                isinstance(e, Delete) and (e.schema, e.table) == (effect.schema, effect.table) for e in later
            )
            if isinstance(effect, Update) and deleted_later:
                continue  # the first attempt got as far as the delete
            raise
        except ConflictError as e:
            if getattr(e, "actual", None) is not None and getattr(e, "actual", None) == getattr(e, "target", ...):
                continue  # a compare-and-set that already holds its new value
            raise
        rids.update(result.rids)
    return rids
