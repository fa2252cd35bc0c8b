"""The embedded catalog's DDL: the bookkeeping tables of a file, the SQL table of a catalog table (keys,
foreign keys, indexes), the status-value triggers, and switching a connection to WAL."""

from __future__ import annotations

import sqlite3
import time

from deriva_ml.catalog.sqlite._rid import FIRST_RID
from deriva_ml.catalog.sqlite._sql import HIDDEN_SEQ, q, sql_name
from deriva_ml.core.effects import STATUS_COLUMN
from deriva_ml.core.schema_defs import TableDef
from deriva_ml.core.status import STATUS_ORDER

_SQL_TYPES = {
    "int2": "INTEGER",
    "int4": "INTEGER",
    "int8": "INTEGER",
    "boolean": "INTEGER",
    "float4": "REAL",
    "float8": "REAL",
}


def init_meta(conn: sqlite3.Connection) -> None:
    """Create the bookkeeping tables of a catalog file (idempotent, one transaction)."""
    cur = conn.cursor()
    cur.execute("BEGIN IMMEDIATE")
    try:
        cur.execute("CREATE TABLE IF NOT EXISTS _dml_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID")
        cur.execute(
            "INSERT OR IGNORE INTO _dml_meta VALUES ('next_rid', ?), ('seq', 0), ('format', 1)",
            (FIRST_RID,),
        )
        cur.execute(
            "CREATE TABLE IF NOT EXISTS _dml_tables (schema TEXT NOT NULL, name TEXT NOT NULL, "
            "definition TEXT NOT NULL, PRIMARY KEY (schema, name)) WITHOUT ROWID"
        )
        cur.execute(
            "CREATE TABLE IF NOT EXISTS _dml_rid_ranges (lo INTEGER PRIMARY KEY, hi INTEGER NOT NULL, "
            "schema TEXT NOT NULL, name TEXT NOT NULL)"
        )
        cur.execute("CREATE TABLE IF NOT EXISTS _dml_journal (seq INTEGER PRIMARY KEY, entry TEXT NOT NULL)")
        # rows deleted by a batch, kept so that a read at an earlier snapshot still sees them
        cur.execute(
            "CREATE TABLE IF NOT EXISTS _dml_tombstones (tbl TEXT NOT NULL, rid TEXT NOT NULL, "
            "row_id INTEGER NOT NULL, ins_seq INTEGER NOT NULL, del_seq INTEGER NOT NULL, row TEXT NOT NULL)"
        )
        cur.execute("CREATE INDEX IF NOT EXISTS _dml_tombstones_tbl ON _dml_tombstones (tbl, del_seq)")
        init_model_log(cur)
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise


def init_model_log(cur: sqlite3.Cursor) -> None:
    """The model history: ``_dml_model_log(seq, schema, name, definition)``, each table definition (JSON)
    with the snapshot (batch number) from which it is in force. A file made before the history was kept
    gets its current tables logged at its current snapshot, kept as ``model_log_from`` in ``_dml_meta``:
    the model at an earlier snapshot of such a file is not known (``model_at`` says so)."""
    known = cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_dml_model_log'").fetchone()
    if known:
        return
    cur.execute(
        "CREATE TABLE _dml_model_log (seq INTEGER NOT NULL, schema TEXT NOT NULL, name TEXT NOT NULL, "
        "definition TEXT NOT NULL, PRIMARY KEY (schema, name, seq)) WITHOUT ROWID"
    )
    (seq,) = cur.execute("SELECT value FROM _dml_meta WHERE key = 'seq'").fetchone()
    cur.execute("INSERT INTO _dml_model_log SELECT ?, schema, name, definition FROM _dml_tables", (seq,))
    cur.execute("INSERT OR REPLACE INTO _dml_meta VALUES ('model_log_from', ?)", (seq if cur.rowcount else 0,))


def set_wal(conn: sqlite3.Connection, busy_timeout: float) -> None:
    """Switch a connection to WAL, retrying while another opener holds the lock: SQLite answers a
    journal-mode change on a new file with SQLITE_BUSY at once, without calling the busy handler, when
    several processes open the same fresh catalog (a parallel sweep's first jobs)."""
    deadline = time.monotonic() + busy_timeout
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            text = str(e).lower()
            if ("locked" not in text and "busy" not in text) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def status_trigger_names(t: TableDef) -> tuple[str, str]:
    """The names of the insert and update triggers of :func:`status_triggers`."""
    name = sql_name(t.schema, t.name)
    return name + ":status:insert", name + ":status:update"


def status_triggers(cur: sqlite3.Cursor, t: TableDef) -> None:
    """Triggers that refuse an ``Execution.Status`` value that is not an execution status (a CHECK that
    can be added to an existing file; ``IF NOT EXISTS`` makes it idempotent)."""
    if t.column(STATUS_COLUMN) is None:
        return
    name = sql_name(t.schema, t.name)
    allowed = ",".join("'" + s.value + "'" for s in STATUS_ORDER)
    valid = ", ".join(s.value for s in STATUS_ORDER)
    for event, trigger in zip(("INSERT", f"UPDATE OF {q(STATUS_COLUMN)}"), status_trigger_names(t), strict=True):
        cur.execute(
            f"CREATE TRIGGER IF NOT EXISTS {q(trigger)} BEFORE {event} ON {q(name)} "
            f"WHEN NEW.{q(STATUS_COLUMN)} IS NOT NULL AND NEW.{q(STATUS_COLUMN)} NOT IN ({allowed}) "
            f"BEGIN SELECT RAISE(ABORT, 'Execution.Status: not an execution status (valid: {valid})'); END"
        )


def ddl(t: TableDef) -> list[str]:
    """The statements that create the SQL table of ``t``: system columns, the hidden batch column, user
    columns, UNIQUE keys, FOREIGN KEYs, an index on every foreign key not led by a key, one on the batch."""
    name = sql_name(t.schema, t.name)
    parts = [
        '"RID" TEXT PRIMARY KEY NOT NULL',
        '"RCT" TEXT NOT NULL',
        '"RMT" TEXT NOT NULL',
        '"RCB" TEXT',
        '"RMB" TEXT',
        f"{HIDDEN_SEQ} INTEGER NOT NULL",
    ]
    for c in t.columns:
        sql_type = _SQL_TYPES.get(c.type, "TEXT")
        parts.append(f"{q(c.name)} {sql_type}{'' if c.nullok else ' NOT NULL'}")
    for k in t.keys:
        if k.columns != ("RID",):
            parts.append(f"UNIQUE ({', '.join(q(c) for c in k.columns)})")
    for fk in t.foreign_keys:
        parts.append(
            f"FOREIGN KEY ({', '.join(q(c) for c in fk.columns)}) REFERENCES "
            f"{q(sql_name(fk.pk_schema, fk.pk_table))} ({', '.join(q(c) for c in fk.pk_columns)}) "
            f"ON DELETE {fk.on_delete}"
        )
    stmts = [f"CREATE TABLE {q(name)} (\n  " + ",\n  ".join(parts) + "\n) STRICT"]
    seen: set[tuple[str, ...]] = {tuple(k.columns) for k in t.keys}
    for fk in t.foreign_keys:
        cols = tuple(fk.columns)
        if cols in seen or any(k.columns[: len(cols)] == cols for k in t.keys):
            continue
        seen.add(cols)
        index = q(name + ":fk:" + ",".join(cols))
        stmts.append(f"CREATE INDEX {index} ON {q(name)} ({', '.join(q(c) for c in cols)})")
    stmts.append(f"CREATE INDEX {q(name + ':seq')} ON {q(name)} ({HIDDEN_SEQ})")
    return stmts
