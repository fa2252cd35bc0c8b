"""Reads at a snapshot of the embedded catalog.

A snapshot is the number of committed batches (``seq``). Every row carries the batch that inserted it
(:data:`~._sql.HIDDEN_SEQ`); a row a batch deletes is first copied, as JSON, to ``_dml_tombstones`` with
the deleting batch. A table as it was at ``seq`` is then its rows inserted by ``seq`` plus its tombstones
inserted by ``seq`` and deleted after it (current values: updates are not versioned). The model at
``seq`` is the table definitions logged in ``_dml_model_log`` by then (DDL is a batch of its own).
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from deriva_ml.catalog.sqlite._sql import HIDDEN_SEQ, Plan, q
from deriva_ml.core.errors import CatalogError, NotFound, ValidationError
from deriva_ml.core.schema_defs import SYSTEM_COLUMNS

#: ``(FROM source AS alias, its params, conditions, their params, rowid column)``
Source = tuple[str, list[Any], list[str], list[Any], str]


def snapshot_seq(snapshot: str) -> int:
    """The batch number a snapshot id of this catalog names."""
    if not re.fullmatch(r"[0-9]+", str(snapshot)):
        raise ValidationError(f"snapshot {snapshot!r} is not a snapshot of this catalog (expected digits)")
    return int(snapshot)


def _row_json(plan: Plan) -> str:
    cols = (*SYSTEM_COLUMNS, *plan.user_cols)
    return "json_object(" + ", ".join(f"'{c.replace(chr(39), chr(39) * 2)}', {q(c)}" for c in cols) + ")"


def tombstone(cur: sqlite3.Cursor, plan: Plan, cond: str, params: list[Any], seq: int) -> None:
    """Keep the rows about to be deleted by batch ``seq`` (so reads at earlier snapshots still see them)."""
    cur.execute(
        f"INSERT INTO _dml_tombstones (tbl, rid, row_id, ins_seq, del_seq, row) "
        f"SELECT ?, RID, rowid, {HIDDEN_SEQ}, ?, {_row_json(plan)} FROM {plan.sql} WHERE {cond}",
        [plan.sql, seq, *params],
    )


def _at(plan: Plan, seq: int) -> tuple[str, list[Any]]:
    """A FROM source of ``plan``'s table as it was at snapshot ``seq``: rows inserted by then that still
    exist, plus rows deleted after it (current values: updates are not versioned). Has ``_rowid``."""
    cols = (*SYSTEM_COLUMNS, *plan.user_cols)
    now = ",".join(q(c) for c in cols)
    old = ",".join(f"json_extract(row, ?) AS {q(c)}" for c in cols)
    sql = (
        f"(SELECT rowid AS _rowid, {now} FROM {plan.sql} WHERE {HIDDEN_SEQ} <= ? "
        f"UNION ALL SELECT row_id AS _rowid, {old} FROM _dml_tombstones "
        f"WHERE tbl = ? AND ins_seq <= ? AND del_seq > ?)"
    )
    paths = ['$."' + c + '"' for c in cols]
    return sql, [seq, *paths, plan.sql, seq, seq]


def source_at(conn: sqlite3.Connection, plan: Plan, seq: int | None, alias: str) -> Source:
    """``(FROM source AS alias, its params, conditions, their params, rowid column)`` reading ``plan``'s
    table at snapshot ``seq`` (None: now). Rows inserted by then; when rows of the table were deleted
    after ``seq``, their tombstones are read too (a UNION); otherwise the plain, indexed table."""
    if seq is None:
        return f"{plan.sql} AS {alias}", [], [], [], f"{alias}.rowid"
    gone = conn.execute(
        "SELECT 1 FROM _dml_tombstones WHERE tbl = ? AND del_seq > ? AND ins_seq <= ? LIMIT 1",
        (plan.sql, seq, seq),
    ).fetchone()
    if gone is None:
        return f"{plan.sql} AS {alias}", [], [f"{alias}.{HIDDEN_SEQ} <= ?"], [seq], f"{alias}.rowid"
    source, params = _at(plan, seq)
    return f"{source} AS {alias}", params, [], [], f"{alias}._rowid"


def existed_at(conn: sqlite3.Connection, table_sql: str, rid: str, seq: int) -> bool:
    """Whether the row ``rid`` of the SQL table ``table_sql`` (quoted) existed at snapshot ``seq``:
    inserted by then, and not deleted by then (its tombstone)."""
    live = conn.execute(f"SELECT 1 FROM {table_sql} WHERE RID = ? AND {HIDDEN_SEQ} <= ?", (rid, seq)).fetchone()
    gone = conn.execute(
        "SELECT 1 FROM _dml_tombstones WHERE tbl = ? AND rid = ? AND ins_seq <= ? AND del_seq > ?",
        (table_sql, rid, seq, seq),
    ).fetchone()
    return bool(live or gone)


class ModelHistoryUnknown(CatalogError):
    """The model at a snapshot taken before the catalog file kept its model history."""


def model_at(conn: sqlite3.Connection, seq: int) -> list[str]:
    """The table definitions (JSON) in force at snapshot ``seq``: per table, the last one logged by then.
    A snapshot after the current one is :class:`NotFound`; one before the file kept its model history
    (``model_log_from``) is :class:`ModelHistoryUnknown` rather than a guess."""
    meta = dict(conn.execute("SELECT key, value FROM _dml_meta WHERE key IN ('seq', 'model_log_from')").fetchall())
    latest, since = int(meta["seq"]), int(meta.get("model_log_from", 0))
    if seq > latest:
        raise NotFound(f"snapshot {seq} is not a snapshot of this catalog (snapshots are 0..{latest})")
    if seq < since:
        raise ModelHistoryUnknown(
            f"the model at snapshot {seq} is not recorded: this catalog file kept no model history before "
            f"snapshot {since} (it was made by an older deriva-ml); snapshots {since}..{latest} are readable"
        )
    rows = conn.execute(
        "SELECT definition FROM _dml_model_log AS m WHERE seq = (SELECT max(seq) FROM _dml_model_log "
        "WHERE schema = m.schema AND name = m.name AND seq <= ?)",
        (seq,),
    ).fetchall()
    return [r[0] for r in rows]
