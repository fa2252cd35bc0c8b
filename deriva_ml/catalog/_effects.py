"""What the batch writers of both catalog adapters share: which write each effect kind is (and which return
rows), an update's rows grouped by the columns they set, a delete's values with labels resolved, and the
error for an update whose key matches no stored row."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from deriva_ml.catalog._common import check_columns
from deriva_ml.core.effects import Delete, Effect, Insert, SetStatus, Update, resolve_refs
from deriva_ml.core.errors import NotFound, RIDNotFound
from deriva_ml.core.rid import RID
from deriva_ml.core.schema_defs import TableDef

Rows = tuple[dict[str, Any], ...]
T = TypeVar("T")


def dispatch(
    effect: Effect,
    target: T,
    *,
    set_status: Callable[[T, SetStatus], Rows],
    insert: Callable[[T, Insert], Rows],
    update: Callable[[T, Update], None],
    delete: Callable[[T, Delete], None],
) -> Rows:
    """Apply ``effect`` to ``target`` (a table or plan) with the writer of its kind; the rows it inserted
    (or wrote, for a status change), none for an update or a delete."""
    if isinstance(effect, SetStatus):
        return set_status(target, effect)
    if isinstance(effect, Insert):
        return insert(target, effect)
    if isinstance(effect, Update):
        update(target, effect)
    else:
        delete(target, effect)
    return ()


def update_groups(t: TableDef, effect: Update, rids: Mapping[str, RID]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """The rows of ``effect`` (labels resolved) by the sorted columns they set besides the key (checked)."""
    check_columns(t, effect.key)
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in effect.rows:
        row = resolve_refs(r, rids)
        cols = tuple(sorted(c for c in row if c not in effect.key))
        groups.setdefault(cols, []).append(row)
    return groups


def no_row_with_key(t: TableDef, key: tuple[str, ...], row: Mapping[str, Any]) -> NotFound:
    """The error for an update of ``t`` whose ``key`` values (those of ``row``) match no stored row."""
    value = row[key[0]] if len(key) == 1 else {k: row[k] for k in key}
    if key == ("RID",):
        return RIDNotFound(value, t.qualified)
    return NotFound(f"update of {t.qualified}: no row has {list(key)} = {value!r}")


def delete_values(t: TableDef, effect: Delete, rids: Mapping[str, RID]) -> tuple[list[Any], dict[str, Any]]:
    """The values and the extra where-conditions of a delete (columns checked, labels resolved)."""
    check_columns(t, [effect.column, *effect.where])
    values = list(resolve_refs({str(i): v for i, v in enumerate(effect.values)}, rids).values())
    return values, resolve_refs(effect.where, rids)
