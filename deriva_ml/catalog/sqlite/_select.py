"""The SELECT statements of the embedded catalog's reads: where-clauses, the filter algebra
(:mod:`deriva_ml.core.filters`) in SQL, and the one statement of each read (query, linked query, path)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from deriva_ml.catalog._common import check_columns, check_path_columns
from deriva_ml.catalog.sqlite._snapshots import snapshot_seq, source_at
from deriva_ml.catalog.sqlite._sql import CHUNK, Plan, q
from deriva_ml.core.errors import ValidationError
from deriva_ml.core.filters import And, Cmp, In, Not, Or, PathQuery

_SQL_OPS = {"eq": "=", "lt": "<", "leq": "<=", "gt": ">", "geq": ">="}


def _in_list(plan: Plan, name: str, col: str, values: Sequence[Any]) -> tuple[list[str], list[Any]]:
    """The disjuncts (and parameters) of ``name IN values``, a None among the values as ``IS NULL``;
    no disjunct for an empty list."""
    vals = [v for v in values if v is not None]
    parts: list[str] = []
    params: list[Any] = []
    if len(vals) > CHUNK:  # one parameter, however long the list (SQLite caps host parameters)
        parts.append(f"{name} IN (SELECT value FROM json_each(?))")
        params.append(json.dumps([plan.encode(col, v) for v in vals]))
    elif vals:
        parts.append(f"{name} IN ({','.join('?' * len(vals))})")
        params.extend(plan.encode(col, v) for v in vals)
    if None in values:
        parts.append(f"{name} IS NULL")
    return parts, params


def conditions(plan: Plan, items: list[tuple[str, Any, bool]], prefix: str) -> tuple[list[str], list[Any]] | None:
    """SQL conditions and parameters for ``where_items`` on ``plan``'s table (columns prefixed with
    ``prefix``, e.g. ``"s."``); None when a condition can match no row (an empty list of values)."""
    conds: list[str] = []
    params: list[Any] = []
    for col, value, many in items:
        name = prefix + q(col)
        if many:
            parts, more = _in_list(plan, name, col, value)
            if not parts:
                return None
            conds.append("(" + " OR ".join(parts) + ")")
            params.extend(more)
        elif value is None:
            conds.append(f"{name} IS NULL")
        else:
            conds.append(f"{name} = ?")
            params.append(plan.encode(col, value))
    return conds, params


def filter_sql(plan: Plan, f: Any, prefix: str) -> tuple[str, list[Any]]:
    """SQL (with parameters) for a filter record of ``deriva_ml.core.filters`` on ``plan``'s table."""
    if isinstance(f, Cmp):
        name = prefix + q(f.column)
        if f.op == "null":
            return f"{name} IS NULL", []
        return f"{name} {_SQL_OPS[f.op]} ?", [plan.encode(f.column, f.value)]
    if isinstance(f, In):
        parts, params = _in_list(plan, prefix + q(f.column), f.column, f.values)
        return ("(" + " OR ".join(parts) + ")" if parts else "0"), params
    if isinstance(f, And | Or):
        if not f.parts:
            return ("1" if isinstance(f, And) else "0"), []
        sqls, params = [], []
        for p in f.parts:
            s, ps = filter_sql(plan, p, prefix)
            sqls.append(s)
            params.extend(ps)
        return "(" + (" AND " if isinstance(f, And) else " OR ").join(sqls) + ")", params
    if isinstance(f, Not):
        s, ps = filter_sql(plan, f.part, prefix)
        return f"(NOT {s})", ps
    raise ValidationError(f"not a filter: {f!r}")


def query_sql(
    conn: sqlite3.Connection,
    plan: Plan,
    names: Sequence[str],
    items: list[tuple[str, Any, bool]],
    order_by: Sequence[str],
    limit: int | None,
    snapshot: str | None,
) -> tuple[str, list[Any]] | None:
    """The statement of ``query`` (checked names); None when nothing can match."""
    built = conditions(plan, items, "")
    if built is None:
        return None
    conds, params = built
    seq = None if snapshot is None else snapshot_seq(snapshot)
    # rows inserted by then, deleted ones included (tombstones)
    source, sparams, sconds, scparams, order = source_at(conn, plan, seq, "t")
    conds = [*sconds, *conds]
    params = [*sparams, *scparams, *params]
    sql = f"SELECT {','.join(q(c) for c in names)} FROM {source}"
    if conds:
        sql += " WHERE " + " AND ".join(conds)
    sql += " ORDER BY " + ", ".join([*(q(c) for c in order_by), order])
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    return sql, params


def linked_sql(
    conn: sqlite3.Connection,
    src: Plan,
    dst: Plan,
    names: Sequence[str],
    items: list[tuple[str, Any, bool]],
    *,
    via: str,
    target_column: str,
    limit: int | None,
    snapshot: str | None,
) -> tuple[str, list[Any]] | None:
    """The statement of ``query_linked`` (checked names): the target rows semi-joined (IN) to the filtered
    source rows, so each target row appears once however many source rows reference it; both sides read
    at the snapshot. None when nothing can match."""
    built = conditions(src, items, "s.")
    if built is None or (limit is not None and int(limit) <= 0):
        return None  # (SQLite reads a negative LIMIT as no limit)
    conds, params = built
    conds.append(f"s.{q(via)} IS NOT NULL")
    # both sides as they were at the snapshot, deleted rows included (tombstones)
    seq = None if snapshot is None else snapshot_seq(snapshot)
    dst_source, dparams, dconds, dcparams, _ = source_at(conn, dst, seq, "t")
    src_source, sparams, sconds, scparams, _ = source_at(conn, src, seq, "s")
    params = [*dparams, *sparams, *scparams, *params, *dcparams]
    sql = (
        f"SELECT {','.join('t.' + q(c) for c in names)} FROM {dst_source} "
        f"WHERE t.{q(target_column)} IN (SELECT s.{q(via)} FROM {src_source} "
        f"WHERE {' AND '.join([*sconds, *conds])})"
    )
    if dconds:
        sql += " AND " + " AND ".join(dconds)
    sql += " ORDER BY t.RID"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    return sql, params


def path_sql(
    conn: sqlite3.Connection, plans: Sequence[Plan], query: PathQuery, seq: int | None, *, count: bool
) -> tuple[tuple[str, ...], str | None, list[Any]]:
    """``(columns, statement, parameters)`` of a path query over ``plans`` (one per step), nested IN
    semi-joins; a count when ``count``. The statement is None when the limit admits no row."""
    check_path_columns(query, [p.table for p in plans])
    last = plans[-1]
    names = tuple(query.columns) if query.columns else last.table.column_names
    check_columns(last.table, names)
    if query.limit is not None and query.limit <= 0:
        return names, None, []
    inner: tuple[str, list[Any]] | None = None
    sql = ""
    params: list[Any] = []
    for i, (step, plan) in enumerate(zip(query.steps, plans, strict=True)):
        alias = f"p{i}"
        source, sparams, sconds, scparams, _ = source_at(conn, plan, seq, alias)
        conds: list[str] = list(sconds)
        cparams: list[Any] = list(scparams)
        if step.filter is not None:
            fsql, fparams = filter_sql(plan, step.filter, alias + ".")
            conds.append(fsql)
            cparams.extend(fparams)
        if inner is not None:
            conds.append(f"{alias}.{q(step.target_column or '')} IN ({inner[0]})")
            cparams.extend(inner[1])
        is_last = i == len(plans) - 1
        if not is_last:
            nxt = query.steps[i + 1].via or ""
            conds.append(f"{alias}.{q(nxt)} IS NOT NULL")
            if query.after is not None and i == len(plans) - 2 and query.steps[-1].target_column == "RID":
                # a page after RID R: only the links to RIDs after R (the index range, not all links per page)
                conds.append(f"{alias}.{q(nxt)} > ?")
                cparams.append(str(query.after))
            head = f"SELECT {alias}.{q(nxt)} FROM {source}"
        elif count:
            head = f"SELECT count(*) FROM {source}"
        else:
            head = f"SELECT {','.join(alias + '.' + q(c) for c in names)} FROM {source}"
        if is_last and query.after is not None:
            conds.append(f"{alias}.RID > ?")
            cparams.append(str(query.after))
        sql = head + (" WHERE " + " AND ".join(conds) if conds else "")
        params = [*sparams, *cparams]
        inner = (sql, params)
    if not count:
        sql += f" ORDER BY p{len(plans) - 1}.RID"
        if query.limit is not None:
            sql += " LIMIT ?"
            params.append(int(query.limit))
    return names, sql, params
