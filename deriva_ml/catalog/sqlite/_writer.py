"""The batch writer of the embedded catalog: each effect of a batch as SQL in the batch's transaction
(RIDs allocated from the counter, defaults filled, labels resolved, deleted rows kept as tombstones)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from deriva_ml.catalog._common import check_writable
from deriva_ml.catalog._effects import delete_values, dispatch, no_row_with_key, update_groups
from deriva_ml.catalog.sqlite._errors import integrity_error
from deriva_ml.catalog.sqlite._rid import encode_rid
from deriva_ml.catalog.sqlite._snapshots import tombstone
from deriva_ml.catalog.sqlite._sql import CHUNK, Plan, q
from deriva_ml.core.effects import (
    STATUS_COLUMN,
    Delete,
    Effect,
    Insert,
    SetStatus,
    Update,
    check_status_guard,
    resolve_refs,
)
from deriva_ml.core.errors import ForeignKeyError, RIDNotFound, StatusConflict, ValidationError
from deriva_ml.core.rid import RID
from deriva_ml.core.schema_defs import SYSTEM_COLUMNS, TableDef

_MISSING = object()


class State:
    """What the effects of one batch share: the RID counter, the batch number, the time and user stamped
    into the rows, and the RIDs of labelled rows."""

    __slots__ = ("next_rid", "now", "rids", "seq", "user")

    def __init__(self, next_rid: int, seq: int, now: str, user: str | None) -> None:
        self.next_rid = next_rid
        self.seq = seq
        self.now = now
        self.user = user
        self.rids: dict[str, RID] = {}


def write(
    cur: sqlite3.Cursor,
    effects: Sequence[Effect],
    plans: Sequence[Plan],
    st: State,
    *,
    guard_status: bool,
    tables: Sequence[TableDef],
) -> list[tuple[dict[str, Any], ...]]:
    """Apply ``effects`` (one plan each) in the open transaction; the rows each inserted
    (or wrote, for a status change). ``tables`` (the model) name the referrers of a refused delete."""
    inserted: list[tuple[dict[str, Any], ...]] = []
    for effect, plan in zip(effects, plans, strict=True):
        if guard_status:
            check_status_guard(effect)
        rows = dispatch(
            effect,
            plan,
            set_status=lambda p, e: _set_status(cur, p, e, st),
            insert=lambda p, e: _insert(cur, p, e, st),
            update=lambda p, e: _update(cur, p, e, st),
            delete=lambda p, e: _delete(cur, p, e, st, tables),
        )
        inserted.append(rows)
    return inserted


def _insert(cur: sqlite3.Cursor, plan: Plan, effect: Insert, st: State) -> tuple[dict[str, Any], ...]:
    user_set = plan.user_set
    rids = st.rids
    base = st.next_rid
    st.next_rid += len(effect.rows)
    fill = plan.fill
    pv_rows: list[list[Any]] = []
    sql_rows: list[list[Any]] = []
    has_json = bool(plan.json_cols)
    head = [None, st.now, st.now, st.user, st.user, st.seq]
    for i, row in enumerate(effect.rows):
        if not user_set.issuperset(row.keys()):
            check_writable(plan.table, row.keys(), "insert")
        if rids:
            row = resolve_refs(row, rids)
        rid = encode_rid(base + i)
        vals = head.copy()
        vals[0] = rid
        for name, default, tmpl, _ in fill:
            v = row.get(name, _MISSING)
            if v is _MISSING:
                v = tmpl.replace("{RID}", rid) if tmpl is not None else default
            vals.append(v)
        pv_rows.append(vals)
        if has_json:
            sql_rows.append(
                vals[:6]
                + [
                    json.dumps(v, sort_keys=True) if j and v is not None else v
                    for (_, _, _, j), v in zip(fill, vals[6:], strict=True)
                ]
            )
    if not has_json:
        sql_rows = pv_rows
    if pv_rows:
        cur.execute(
            "INSERT INTO _dml_rid_ranges (lo, hi, schema, name) VALUES (?, ?, ?, ?)",
            (base, base + len(pv_rows) - 1, plan.table.schema, plan.table.name),
        )
    try:
        if effect.on_conflict_skip:
            kept = []
            for pv, sv in zip(pv_rows, sql_rows, strict=True):
                cur.execute(plan.insert_skip_sql, sv)
                if cur.rowcount == 1:
                    kept.append(pv)
            if effect.labels:
                kept_rids = {pv[0] for pv in kept}
                for label, pv in zip(effect.labels, pv_rows, strict=True):
                    if label is None:
                        continue
                    if pv[0] in kept_rids:
                        rids[label] = pv[0]
                    else:
                        existing = _existing(
                            cur, plan, dict(zip(("RID", *plan.user_cols), (None, *pv[6:]), strict=True))
                        )
                        if existing is not None:
                            rids[label] = existing
            pv_rows = kept
        else:
            cur.executemany(plan.insert_sql, sql_rows)
            if effect.labels:
                for label, pv in zip(effect.labels, pv_rows, strict=True):
                    if label is not None:
                        rids[label] = pv[0]
    except sqlite3.IntegrityError as e:
        raise integrity_error(
            cur, plan, e, [dict(zip(plan.user_cols, pv[6:], strict=True)) for pv in pv_rows], "insert"
        ) from e
    except sqlite3.InterfaceError as e:
        raise ValidationError(f"insert into {plan.table.qualified}: a value cannot be stored: {e}") from e
    names = (*SYSTEM_COLUMNS, *plan.user_cols)
    return tuple({n: v for n, v in zip(names, (*pv[:5], *pv[6:]), strict=True)} for pv in pv_rows)


def _existing(cur: sqlite3.Cursor, plan: Plan, row: Mapping[str, Any]) -> RID | None:
    for key in plan.keys:
        if all(row.get(c) is not None for c in key):
            cond = " AND ".join(f"{q(c)} = ?" for c in key)
            hit = cur.execute(
                f"SELECT RID FROM {plan.sql} WHERE {cond}", [plan.encode(c, row[c]) for c in key]
            ).fetchone()
            if hit:
                return RID(hit[0])
    return None


def _update(cur: sqlite3.Cursor, plan: Plan, effect: Update, st: State) -> None:
    for cols, rows in update_groups(plan.table, effect, st.rids).items():
        check_writable(plan.table, cols, "update")
        sets = ", ".join(f"{q(c)} = ?" for c in (*cols, "RMT", "RMB"))
        cond = " AND ".join(f"{q(k)} = ?" for k in effect.key)
        sql = f"UPDATE {plan.sql} SET {sets} WHERE {cond}"
        params = [
            [plan.encode(c, r[c]) for c in cols] + [st.now, st.user] + [plan.encode(k, r[k]) for k in effect.key]
            for r in rows
        ]
        try:
            for p, r in zip(params, rows, strict=True):
                cur.execute(sql, p)
                if cur.rowcount == 0:
                    raise no_row_with_key(plan.table, effect.key, r)
        except sqlite3.IntegrityError as e:
            raise integrity_error(cur, plan, e, rows, "update") from e
        except sqlite3.InterfaceError as e:
            raise ValidationError(f"update of {plan.table.qualified}: a value cannot be stored: {e}") from e


def _set_status(cur: sqlite3.Cursor, plan: Plan, effect: SetStatus, st: State) -> tuple[dict[str, Any], ...]:
    """``UPDATE ... SET Status = new WHERE RID = ? AND Status = expected``, in the batch's transaction.

    Returns the rows written (RID and the columns set). A write whose row holds another status lost a
    race: skipped with ``skip_lost``, else :class:`StatusConflict` (the whole batch rolls back).
    """
    written: list[dict[str, Any]] = []
    for w in effect.writes:
        values = w.values()
        check_writable(plan.table, values, "status change")
        sets = ", ".join(f"{q(c)} = ?" for c in (*values, "RMT", "RMB"))
        cur.execute(
            f"UPDATE {plan.sql} SET {sets} WHERE RID = ? AND {q(STATUS_COLUMN)} = ?",
            [*values.values(), st.now, st.user, w.rid, w.expected.value],
        )
        if cur.rowcount == 1:
            written.append({"RID": w.rid, **values})
            continue
        if effect.skip_lost:
            continue
        held = cur.execute(f"SELECT {q(STATUS_COLUMN)} FROM {plan.sql} WHERE RID = ?", (w.rid,)).fetchone()
        if held is None:
            raise RIDNotFound(w.rid, plan.table.qualified)
        raise StatusConflict(w.rid, w.expected, w.status, held[0])
    return tuple(written)


def _delete(cur: sqlite3.Cursor, plan: Plan, effect: Delete, st: State, tables: Sequence[TableDef]) -> None:
    values, where = delete_values(plan.table, effect, st.rids)
    extra = "".join(f" AND {q(c)} = ?" for c in where)
    extra_params = [plan.encode(c, v) for c, v in where.items()]
    try:
        for i in range(0, len(values), CHUNK):
            chunk = values[i : i + CHUNK]
            marks = ",".join("?" * len(chunk))
            cond = f"{q(effect.column)} IN ({marks}){extra}"
            params = [plan.encode(effect.column, v) for v in chunk] + extra_params
            tombstone(cur, plan, cond, params, st.seq)
            cur.execute(f"DELETE FROM {plan.sql} WHERE {cond}", params)
    except sqlite3.IntegrityError as e:
        referrers = [
            f"{t.qualified}{list(fk.columns)}"
            for t in tables
            for fk in t.foreign_keys
            if (fk.pk_schema, fk.pk_table) == (plan.table.schema, plan.table.name)
        ]
        raise ForeignKeyError(
            f"cannot delete rows of {plan.table.qualified} where {effect.column} in {list(values)!r}: "
            f"still referenced (by one of {referrers})"
        ) from e
