"""The embedded catalog: one SQLite file that behaves like a small ERMrest catalog.

Layout of the file (see ``docs/catalog.md``):

- ``_dml_meta(key, value)``: ``next_rid`` (a counter that only grows, so RIDs are never reused) and
  ``seq`` (the number of committed batches: the snapshot id);
- ``_dml_tables(schema, name, definition)``: the catalog model, each :class:`TableDef` as JSON;
- ``_dml_rid_ranges(lo, hi, schema, name)``: which table each run of RIDs was allocated to, so that
  ``resolve_rid`` is one indexed range lookup plus one primary-key lookup;
- ``_dml_tombstones(tbl, rid, row_id, ins_seq, del_seq, row)``: every row a batch deleted (as JSON), so
  that a read at an earlier snapshot still sees it;
- one SQL table per catalog table, named ``"<schema>:<table>"`` (SQLite has no schemas), with the
  system columns, the user columns, a hidden ``_seq`` column (the batch that inserted the row), UNIQUE
  constraints for keys, FOREIGN KEY constraints and an index on every foreign key.

Each batch is one ``BEGIN IMMEDIATE`` transaction; a lock that cannot be had within ``busy_timeout``
raises :class:`CatalogBusy`.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from deriva_ml.catalog import _codec
from deriva_ml.catalog._common import JSON_TYPES, check_columns, check_writable, find_table, where_items
from deriva_ml.catalog.port import ML_SCHEMA, Where, create_missing_tables
from deriva_ml.catalog.schema import ML_TABLES, seed_batch
from deriva_ml.core.codec import parse_json
from deriva_ml.core.effects import (
    STATUS_COLUMN,
    STATUS_SCHEMA,
    STATUS_TABLE,
    Batch,
    BatchResult,
    Delete,
    Insert,
    SetStatus,
    Update,
    check_status_guard,
    resolve_refs,
)
from deriva_ml.core.errors import (
    CatalogBusy,
    CatalogError,
    ConflictError,
    ForeignKeyError,
    NotFound,
    RIDNotFound,
    StatusConflict,
    UnknownTable,
    ValidationError,
)
from deriva_ml.core.filters import And as And_
from deriva_ml.core.filters import Cmp, In, Not, PathQuery, columns_of
from deriva_ml.core.filters import Or as Or_
from deriva_ml.core.rid import RID, is_rid, split_snapshot
from deriva_ml.core.schema_defs import SYSTEM_COLUMNS, CatalogModel, TableDef
from deriva_ml.core.status import STATUS_ORDER

__all__ = ["SQLiteCatalog", "decode_rid", "encode_rid", "open_local_catalog"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DIGIT = {c: i for i, c in enumerate(_ALPHABET)}
#: The first RID is ``1-0000`` like a fresh ERMrest catalog.
FIRST_RID = 32**4

_SQL_TYPES = {
    "int2": "INTEGER",
    "int4": "INTEGER",
    "int8": "INTEGER",
    "boolean": "INTEGER",
    "float4": "REAL",
    "float8": "REAL",
}
_HIDDEN_SEQ = "_seq"
_MISSING = object()
_CHUNK = 500


#: Every pair of base-32 digits, so that a 4-digit RID group is two lookups.
_PAIRS: tuple[str, ...] = tuple(_ALPHABET[i >> 5] + _ALPHABET[i & 31] for i in range(1024))


def _group(v: int) -> str:
    """The four base-32 digits of ``v`` (0 <= v < 32**4)."""
    return _PAIRS[v >> 10] + _PAIRS[v & 1023]


def encode_rid(n: int) -> RID:
    """ERMrest's RID rendering: base-32 (Crockford digits), in groups of four from the right."""
    if n < 0:
        raise ValueError(f"RID counter {n} is negative")
    groups = []
    while True:
        n, r = divmod(n, 1 << 20)
        groups.append(r)
        if not n:
            break
    head = _group(groups[-1]).lstrip("0") or "0"
    return RID("-".join([head, *(_group(g) for g in reversed(groups[:-1]))]))


def decode_rid(rid: str) -> int | None:
    """Inverse of :func:`encode_rid`; None when ``rid`` is not in canonical form."""
    n = 0
    for ch in rid.replace("-", ""):
        d = _DIGIT.get(ch)
        if d is None:
            return None
        n = n * 32 + d
    return n if encode_rid(n) == rid else None


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_name(schema: str, table: str) -> str:
    return f"{schema}:{table}"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _Plan:
    """Per-table SQL pieces, derived once from a TableDef."""

    def __init__(self, table: TableDef) -> None:
        self.table = table
        self.sql = _q(_sql_name(table.schema, table.name))
        self.user_cols = tuple(c.name for c in table.columns)
        self.user_set = frozenset(self.user_cols)
        self.json_cols = frozenset(c.name for c in table.columns if c.type in JSON_TYPES)
        self.bool_cols = frozenset(c.name for c in table.columns if c.type == "boolean")
        # (name, default, rid-template, encode-as-json)
        self.fill: list[tuple[str, Any, str | None, bool]] = []
        for c in table.columns:
            tmpl = c.default if isinstance(c.default, str) and "{RID}" in c.default else None
            self.fill.append((c.name, c.default, tmpl, c.name in self.json_cols))
        cols = (*SYSTEM_COLUMNS, _HIDDEN_SEQ, *self.user_cols)
        marks = ",".join("?" * len(cols))
        names = ",".join(_q(c) for c in cols)
        self.insert_sql = f"INSERT INTO {self.sql} ({names}) VALUES ({marks})"
        self.insert_skip_sql = self.insert_sql + " ON CONFLICT DO NOTHING"
        self.keys = [k.columns for k in table.keys]

    def decode(self, names: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in zip(names, row, strict=True):
            if value is not None:
                if name in self.json_cols:
                    value = parse_json(value, f"column {name} of a catalog row")
                elif name in self.bool_cols:
                    value = bool(value)
            out[name] = value
        return out

    def encode(self, name: str, value: Any) -> Any:
        if value is not None and name in self.json_cols:
            return json.dumps(value, sort_keys=True)
        return value


class SQLiteCatalog:
    """A catalog in a SQLite file (created on first use unless ``create=False``).

    ``clock`` returns the time stamped into RCT/RMT (default: UTC now); ``user`` is recorded as RCB/RMB;
    ``busy_timeout`` is how long (seconds) a writer waits for another process's lock before
    :class:`CatalogBusy`.

    ``guard_status`` (default True) enforces the status rules: a plain write of ``Execution.Status`` is
    refused (status changes are :class:`SetStatus` compare-and-sets) and a trigger refuses values that are
    not execution statuses. Only a test double that imitates a server without these rules turns it off.
    """

    def __init__(
        self,
        path: Path,
        *,
        create: bool = True,
        clock: Callable[[], datetime] = _utc_now,
        user: str | None = None,
        busy_timeout: float = 5.0,
        guard_status: bool = True,
    ) -> None:
        self.path = Path(path)
        self.guard_status = guard_status
        if not create and not self.path.exists():
            raise NotFound(f"no catalog at {self.path} (pass create=True to make one)")
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._user = user
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            str(self.path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        try:
            _set_wal(self._conn, busy_timeout)
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._init_meta()
        except sqlite3.OperationalError as e:
            self._conn.close()
            raise _busy_or(e, f"cannot open catalog {self.path}") from e
        self._model: CatalogModel | None = None
        self._plans: dict[tuple[str, str], _Plan] = {}
        #: When True, every applied batch and DDL change is also written, in the same transaction, to the
        #: ``_dml_journal`` table (see ``deriva_ml.catalog.journal``): the journal can never miss a commit.
        self.journal = False

    # ------------------------------------------------------------------------------------ setup

    def _init_meta(self) -> None:
        cur = self._conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS _dml_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID"
            )
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
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SQLiteCatalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteCatalog({str(self.path)!r})"

    # ------------------------------------------------------------------------------------ model

    def model(self, *, refresh: bool = False) -> CatalogModel:
        with self._lock:
            if self._model is None or refresh:
                rows = self._conn.execute("SELECT definition FROM _dml_tables").fetchall()
                tables = [_codec.load_table(parse_json(r[0], f"{self.path}: _dml_tables")) for r in rows]
                order = {(t.schema, t.name): i for i, t in enumerate(ML_TABLES)}
                tables.sort(key=lambda t: (order.get((t.schema, t.name), len(order)), t.schema, t.name))
                self._model = CatalogModel(tuple(tables))
                self._plans = {}
            return self._model

    def _table(self, schema: str, table: str) -> TableDef:
        model = self.model()
        if model.table(schema, table) is None:
            model = self.model(refresh=True)  # another process may have created it
        return find_table(model, schema, table)

    def _plan(self, schema: str, table: str) -> _Plan:
        plan = self._plans.get((schema, table))
        if plan is None:
            plan = _Plan(self._table(schema, table))
            self._plans[(schema, table)] = plan
        return plan

    def create_tables(self, tables: Sequence[TableDef]) -> None:
        with self._lock:
            model = self.model(refresh=True)
            new = {(t.schema, t.name): t for t in tables}
            if len(new) != len(tables):
                raise ValidationError("create_tables: a table is given twice")
            for t in tables:
                if model.table(t.schema, t.name) is not None:
                    raise ConflictError(f"table {t.qualified} already exists")
            for t in tables:
                for fk in t.foreign_keys:
                    target = new.get((fk.pk_schema, fk.pk_table)) or model.table(fk.pk_schema, fk.pk_table)
                    if target is None:
                        raise UnknownTable(
                            f"{fk.pk_schema}:{fk.pk_table}",
                            [*(x.qualified for x in model.tables), *(x.qualified for x in tables)],
                        )
                    cols = tuple(fk.pk_columns)
                    if cols != ("RID",) and cols not in {k.columns for k in target.keys}:
                        raise ValidationError(
                            f"foreign key {t.qualified}{list(fk.columns)} -> {target.qualified}{list(cols)}: "
                            f"the referenced columns are not a key of {target.qualified}"
                        )
                    check_columns(target, cols)
            cur = self._conn.cursor()
            self._begin(cur)
            try:
                # checked again under the write lock: another process may have created one of them
                # between the model read above and BEGIN IMMEDIATE (parallel sweep jobs opening one catalog)
                taken = {
                    (r[0], r[1])
                    for r in cur.execute("SELECT schema, name FROM _dml_tables").fetchall()
                    if (r[0], r[1]) in new
                }
                if taken:
                    schema, name = sorted(taken)[0]
                    raise ConflictError(f"table {schema}:{name} already exists")
                for t in tables:
                    for stmt in _ddl(t):
                        cur.execute(stmt)
                    cur.execute(
                        "INSERT INTO _dml_tables (schema, name, definition) VALUES (?, ?, ?)",
                        (t.schema, t.name, json.dumps(_codec.dump_tables((t,))[0], sort_keys=True)),
                    )
                    if self.guard_status and (t.schema, t.name) == (STATUS_SCHEMA, STATUS_TABLE):
                        _status_triggers(cur, t)
                if self.journal:
                    self._journal(cur, tables=tables)
                cur.execute("COMMIT")
            except BaseException as e:
                cur.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error):
                    raise _busy_or(e, f"create_tables failed: {e}") from e
                raise
            self.model(refresh=True)

    # ------------------------------------------------------------------------------------ writes

    def _begin(self, cur: sqlite3.Cursor) -> None:
        try:
            cur.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise _busy_or(e, f"catalog {self.path} is busy") from e

    def apply(self, batch: Batch) -> BatchResult:
        if not batch.effects:
            return BatchResult()
        with self._lock:
            plans = [self._plan(e.schema, e.table) for e in batch.effects]
            now = self._clock().astimezone(UTC).isoformat(timespec="microseconds")
            cur = self._conn.cursor()
            self._begin(cur)
            try:
                meta = dict(cur.execute("SELECT key, value FROM _dml_meta").fetchall())
                next_rid, seq = int(meta["next_rid"]), int(meta["seq"])
                seq += 1
                state = _State(next_rid, seq, now, self._user)
                inserted: list[tuple[dict[str, Any], ...]] = []
                for effect, plan in zip(batch.effects, plans, strict=True):
                    if self.guard_status:
                        check_status_guard(effect)
                    if isinstance(effect, SetStatus):
                        inserted.append(self._set_status(cur, plan, effect, state))
                    elif isinstance(effect, Insert):
                        inserted.append(self._insert(cur, plan, effect, state))
                    elif isinstance(effect, Update):
                        self._update(cur, plan, effect, state)
                        inserted.append(())
                    else:
                        self._delete(cur, plan, effect, state)
                        inserted.append(())
                cur.execute(
                    "UPDATE _dml_meta SET value = CASE key WHEN 'next_rid' THEN ? ELSE ? END "
                    "WHERE key IN ('next_rid','seq')",
                    (state.next_rid, seq),
                )
                result = BatchResult(rids=state.rids, inserted=tuple(inserted))
                if self.journal:
                    self._journal(cur, batch=batch, result=result)
                cur.execute("COMMIT")
            except BaseException as e:
                if self._conn.in_transaction:
                    cur.execute("ROLLBACK")
                if isinstance(e, sqlite3.OperationalError):
                    raise _busy_or(e, f"batch failed on {self.path}: {e}") from e
                if isinstance(e, sqlite3.Error):
                    raise CatalogError(f"batch failed on {self.path}: {e}") from e
                raise
            return result

    def _journal(
        self,
        cur: sqlite3.Cursor,
        *,
        batch: Batch | None = None,
        result: BatchResult | None = None,
        tables: Sequence[TableDef] = (),
    ) -> None:
        from deriva_ml.catalog.journal import JournalEntry, encode_entry

        (last,) = cur.execute("SELECT coalesce(max(seq), 0) FROM _dml_journal").fetchone()
        entry = JournalEntry(int(last) + 1, batch or Batch(()), result or BatchResult(), tuple(tables))
        cur.execute("INSERT INTO _dml_journal (seq, entry) VALUES (?, ?)", (entry.seq, encode_entry(entry)))

    def journal_lines(self, after: int = 0) -> list[str]:
        """Journal entries (JSON lines) with ``seq > after``, in order."""
        with self._lock:
            rows = self._conn.execute("SELECT entry FROM _dml_journal WHERE seq > ? ORDER BY seq", (after,)).fetchall()
        return [r[0] for r in rows]

    def _insert(self, cur: sqlite3.Cursor, plan: _Plan, effect: Insert, st: _State) -> tuple[dict[str, Any], ...]:
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
                            existing = self._existing(
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
            raise self._integrity(
                cur, plan, e, [dict(zip(plan.user_cols, pv[6:], strict=True)) for pv in pv_rows], "insert"
            ) from e
        except sqlite3.InterfaceError as e:
            raise ValidationError(f"insert into {plan.table.qualified}: a value cannot be stored: {e}") from e
        names = (*SYSTEM_COLUMNS, *plan.user_cols)
        return tuple({n: v for n, v in zip(names, (*pv[:5], *pv[6:]), strict=True)} for pv in pv_rows)

    def _existing(self, cur: sqlite3.Cursor, plan: _Plan, row: Mapping[str, Any]) -> RID | None:
        for key in plan.keys:
            if all(row.get(c) is not None for c in key):
                cond = " AND ".join(f"{_q(c)} = ?" for c in key)
                hit = cur.execute(
                    f"SELECT RID FROM {plan.sql} WHERE {cond}", [plan.encode(c, row[c]) for c in key]
                ).fetchone()
                if hit:
                    return RID(hit[0])
        return None

    def _update(self, cur: sqlite3.Cursor, plan: _Plan, effect: Update, st: _State) -> None:
        check_columns(plan.table, effect.key)
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in effect.rows:
            row = resolve_refs(row, st.rids)
            cols = tuple(sorted(c for c in row if c not in effect.key))
            groups.setdefault(cols, []).append(row)
        for cols, rows in groups.items():
            check_writable(plan.table, cols, "update")
            sets = ", ".join(f"{_q(c)} = ?" for c in (*cols, "RMT", "RMB"))
            cond = " AND ".join(f"{_q(k)} = ?" for k in effect.key)
            sql = f"UPDATE {plan.sql} SET {sets} WHERE {cond}"
            params = [
                [plan.encode(c, r[c]) for c in cols] + [st.now, st.user] + [plan.encode(k, r[k]) for k in effect.key]
                for r in rows
            ]
            try:
                for p, r in zip(params, rows, strict=True):
                    cur.execute(sql, p)
                    if cur.rowcount == 0:
                        value = r[effect.key[0]] if len(effect.key) == 1 else {k: r[k] for k in effect.key}
                        if effect.key == ("RID",):
                            raise RIDNotFound(value, plan.table.qualified)
                        raise NotFound(f"update of {plan.table.qualified}: no row has {list(effect.key)} = {value!r}")
            except sqlite3.IntegrityError as e:
                raise self._integrity(cur, plan, e, rows, "update") from e
            except sqlite3.InterfaceError as e:
                raise ValidationError(f"update of {plan.table.qualified}: a value cannot be stored: {e}") from e

    def _set_status(
        self, cur: sqlite3.Cursor, plan: _Plan, effect: SetStatus, st: _State
    ) -> tuple[dict[str, Any], ...]:
        """``UPDATE ... SET Status = new WHERE RID = ? AND Status = expected``, in the batch's transaction.

        Returns the rows written (RID and the columns set). A write whose row holds another status lost a
        race: skipped with ``skip_lost``, else :class:`StatusConflict` (the whole batch rolls back).
        """
        written: list[dict[str, Any]] = []
        for w in effect.writes:
            values = w.values()
            check_writable(plan.table, values, "status change")
            sets = ", ".join(f"{_q(c)} = ?" for c in (*values, "RMT", "RMB"))
            cur.execute(
                f"UPDATE {plan.sql} SET {sets} WHERE RID = ? AND {_q(STATUS_COLUMN)} = ?",
                [*values.values(), st.now, st.user, w.rid, w.expected.value],
            )
            if cur.rowcount == 1:
                written.append({"RID": w.rid, **values})
                continue
            if effect.skip_lost:
                continue
            held = cur.execute(f"SELECT {_q(STATUS_COLUMN)} FROM {plan.sql} WHERE RID = ?", (w.rid,)).fetchone()
            if held is None:
                raise RIDNotFound(w.rid, plan.table.qualified)
            raise StatusConflict(w.rid, w.expected, w.status, held[0])
        return tuple(written)

    def _delete(self, cur: sqlite3.Cursor, plan: _Plan, effect: Delete, st: _State) -> None:
        check_columns(plan.table, [effect.column, *effect.where])
        values = [v for v in resolve_refs({str(i): v for i, v in enumerate(effect.values)}, st.rids).values()]
        where = resolve_refs(effect.where, st.rids)
        extra = "".join(f" AND {_q(c)} = ?" for c in where)
        extra_params = [plan.encode(c, v) for c, v in where.items()]
        try:
            for i in range(0, len(values), _CHUNK):
                chunk = values[i : i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                cond = f"{_q(effect.column)} IN ({marks}){extra}"
                params = [plan.encode(effect.column, v) for v in chunk] + extra_params
                _tombstone(cur, plan, cond, params, st.seq)
                cur.execute(f"DELETE FROM {plan.sql} WHERE {cond}", params)
        except sqlite3.IntegrityError as e:
            referrers = [
                f"{t.qualified}{list(fk.columns)}"
                for t in self.model().tables
                for fk in t.foreign_keys
                if (fk.pk_schema, fk.pk_table) == (plan.table.schema, plan.table.name)
            ]
            raise ForeignKeyError(
                f"cannot delete rows of {plan.table.qualified} where {effect.column} in {list(values)!r}: "
                f"still referenced (by one of {referrers})"
            ) from e

    def _integrity(
        self,
        cur: sqlite3.Cursor,
        plan: _Plan,
        err: sqlite3.IntegrityError,
        rows: Sequence[Mapping[str, Any]],
        what: str,
    ) -> CatalogError | ValidationError:
        msg = str(err)
        t = plan.table
        if msg.startswith("Execution.Status"):
            return ValidationError(f"{what} of {t.qualified}: {msg}")
        if msg.startswith("NOT NULL constraint failed"):
            col = msg.rsplit(".", 1)[-1]
            return ValidationError(f"{what} of {t.qualified}: column {col!r} must have a value (it is not nullable)")
        if msg.startswith("UNIQUE constraint failed"):
            cols = _unique_cols(msg)
            value: Any = None
            for row in rows:
                if all(c in row for c in cols):
                    cond = " AND ".join(f"{_q(c)} = ?" for c in cols)
                    if cur.execute(
                        f"SELECT 1 FROM {plan.sql} WHERE {cond}", [plan.encode(c, row[c]) for c in cols]
                    ).fetchone():
                        value = row[cols[0]] if len(cols) == 1 else {c: row[c] for c in cols}
                        break
            return ConflictError(f"{what} of {t.qualified}: a row with {'/'.join(cols)} = {value!r} already exists")
        if msg.startswith("FOREIGN KEY constraint failed"):
            for row in rows:
                for fk in t.foreign_keys:
                    vals = [row.get(c) for c in fk.columns]
                    if any(v is None for v in vals):
                        continue
                    cond = " AND ".join(f"{_q(c)} = ?" for c in fk.pk_columns)
                    target = _q(_sql_name(fk.pk_schema, fk.pk_table))
                    if not cur.execute(f"SELECT 1 FROM {target} WHERE {cond}", vals).fetchone():
                        shown = vals[0] if len(vals) == 1 else vals
                        return ForeignKeyError(
                            f"{what} of {t.qualified}: {'/'.join(fk.columns)} = {shown!r} references no "
                            f"row of {fk.pk_schema}:{fk.pk_table} ({'/'.join(fk.pk_columns)})"
                        )
            return ForeignKeyError(f"{what} of {t.qualified}: a foreign key references a missing row")
        return CatalogError(f"{what} of {t.qualified} failed: {msg}")

    # ------------------------------------------------------------------------------------ reads

    def query(
        self,
        schema: str,
        table: str,
        where: Where | None = None,
        *,
        columns: Sequence[str] | None = None,
        order_by: Sequence[str] = (),
        limit: int | None = None,
        snapshot: str | None = None,
    ) -> list[dict[str, Any]]:
        with self._lock:
            plan = self._plan(schema, table)
            t = plan.table
            names = tuple(columns) if columns else t.column_names
            items = where_items(where)
            check_columns(t, [*names, *(c for c, _, _ in items), *order_by])
            built = _conditions(plan, items, "")
            if built is None:
                return []
            conds, params = built
            seq = None if snapshot is None else self._snapshot_seq(snapshot)
            # rows inserted by then, deleted ones included (tombstones)
            source, sparams, sconds, scparams, order = self._snap(plan, seq, "t")
            conds = [*sconds, *conds]
            params = [*sparams, *scparams, *params]
            sql = f"SELECT {','.join(_q(c) for c in names)} FROM {source}"
            if conds:
                sql += " WHERE " + " AND ".join(conds)
            sql += " ORDER BY " + ", ".join([*(_q(c) for c in order_by), order])
            if limit is not None:
                sql += " LIMIT ?"
                params.append(int(limit))
            return self._select(plan, names, sql, params, f"query of {t.qualified}")

    def query_linked(
        self,
        schema: str,
        table: str,
        where: Where | None = None,
        *,
        via: str,
        target_schema: str,
        target_table: str,
        target_column: str = "RID",
        columns: Sequence[str] | None = None,
        limit: int | None = None,
        snapshot: str | None = None,
    ) -> list[dict[str, Any]]:
        # one statement: the target rows semi-joined (IN) to the filtered source rows, so each target
        # row appears once however many source rows reference it; both sides read at the snapshot
        with self._lock:
            src = self._plan(schema, table)
            dst = self._plan(target_schema, target_table)
            names = tuple(columns) if columns else dst.table.column_names
            items = where_items(where)
            check_columns(src.table, [via, *(c for c, _, _ in items)])
            check_columns(dst.table, [target_column, *names])
            built = _conditions(src, items, "s.")
            if built is None or (limit is not None and int(limit) <= 0):
                return []  # (SQLite reads a negative LIMIT as no limit)
            conds, params = built
            conds.append(f"s.{_q(via)} IS NOT NULL")
            # both sides as they were at the snapshot, deleted rows included (tombstones)
            seq = None if snapshot is None else self._snapshot_seq(snapshot)
            dst_source, dparams, dconds, dcparams, _ = self._snap(dst, seq, "t")
            src_source, sparams, sconds, scparams, _ = self._snap(src, seq, "s")
            params = [*dparams, *sparams, *scparams, *params, *dcparams]
            sql = (
                f"SELECT {','.join('t.' + _q(c) for c in names)} FROM {dst_source} "
                f"WHERE t.{_q(target_column)} IN (SELECT s.{_q(via)} FROM {src_source} "
                f"WHERE {' AND '.join([*sconds, *conds])})"
            )
            if dconds:
                sql += " AND " + " AND ".join(dconds)
            sql += " ORDER BY t.RID"
            if limit is not None:
                sql += " LIMIT ?"
                params.append(int(limit))
            what = f"query of {dst.table.qualified} through {src.table.qualified}.{via}"
            return self._select(dst, names, sql, params, what)

    def _select(
        self, plan: _Plan, names: Sequence[str], sql: str, params: list[Any], what: str
    ) -> list[dict[str, Any]]:
        try:
            rows = self._conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as e:
            raise _busy_or(e, f"{what} failed: {e}") from e
        return [plan.decode(names, r) for r in rows]

    def _snapshot_seq(self, snapshot: str) -> int:
        if not re.fullmatch(r"[0-9]+", str(snapshot)):
            raise ValidationError(f"snapshot {snapshot!r} is not a snapshot of this catalog (expected digits)")
        return int(snapshot)

    def snapshot(self) -> str:
        with self._lock:
            (seq,) = self._conn.execute("SELECT value FROM _dml_meta WHERE key = 'seq'").fetchone()
            return str(seq)

    def resolve_rid(self, rid: RID) -> tuple[str, str]:
        if not is_rid(rid):
            from deriva_ml.core.errors import InvalidRID

            raise InvalidRID(rid)
        base, snap = split_snapshot(rid)
        n = decode_rid(base)
        if n is None:
            raise RIDNotFound(rid)
        with self._lock:
            hit = self._conn.execute(
                "SELECT hi, schema, name FROM _dml_rid_ranges WHERE lo <= ? ORDER BY lo DESC LIMIT 1", (n,)
            ).fetchone()
            if hit is None or n > hit[0]:
                raise RIDNotFound(rid)
            schema, name = hit[1], hit[2]
            if snap is not None:  # at a snapshot: inserted by then, and not deleted by then (tombstones)
                seq = self._snapshot_seq(snap)
                sql = _sql_name(schema, name)
                live = self._conn.execute(
                    f"SELECT 1 FROM {_q(sql)} WHERE RID = ? AND {_HIDDEN_SEQ} <= ?", (base, seq)
                ).fetchone()
                gone = self._conn.execute(
                    "SELECT 1 FROM _dml_tombstones WHERE tbl = ? AND rid = ? AND ins_seq <= ? AND del_seq > ?",
                    (_q(sql), base, seq, seq),
                ).fetchone()
                if not (live or gone):
                    raise RIDNotFound(rid)
                return schema, name
            if not self._conn.execute(f"SELECT 1 FROM {_q(_sql_name(schema, name))} WHERE RID = ?", (base,)).fetchone():
                raise RIDNotFound(rid)
            return schema, name

    # ------------------------------------------------------------------------------------ introspection

    def sql_table_name(self, schema: str, table: str) -> str:
        """The SQLite table that holds ``schema:table`` (for tests and tooling)."""
        return _sql_name(schema, table)

    @property
    def connection(self) -> sqlite3.Connection:
        """The underlying connection (read-only use: tests and tooling)."""
        return self._conn

    # --- data (branch data): path queries with the filter algebra (deriva_ml.core.filters)

    def select_path(self, query: PathQuery, *, snapshot: str | None = None) -> list[dict[str, Any]]:
        """The rows a :class:`PathQuery` denotes (one statement): the last table's rows reached from the
        filtered rows of each earlier table, each once, in RID order, after ``query.after``, limited."""
        with self._lock:
            plan, names, sql, params = self._path_sql(query, snapshot, count=False)
            if sql is None:
                return []
            return self._select(plan, names, sql, params, f"query of {plan.table.qualified}")

    def count_path(self, query: PathQuery, *, snapshot: str | None = None) -> int:
        """How many rows :meth:`select_path` would return without a limit (one statement)."""
        with self._lock:
            _plan, _names, sql, params = self._path_sql(attrs.evolve(query, limit=None), snapshot, count=True)
            if sql is None:
                return 0
            try:
                (n,) = self._conn.execute(sql, params).fetchone()
            except sqlite3.OperationalError as e:
                raise _busy_or(e, f"count failed: {e}") from e
            return int(n)

    def _snap(self, plan: _Plan, seq: int | None, alias: str) -> tuple[str, list[Any], list[str], list[Any], str]:
        """``(FROM source AS alias, its params, conditions, their params, rowid column)`` reading ``plan``'s
        table at snapshot ``seq`` (None: now). Rows inserted by then; when rows of the table were deleted
        after ``seq``, their tombstones are read too (a UNION); otherwise the plain, indexed table."""
        if seq is None:
            return f"{plan.sql} AS {alias}", [], [], [], f"{alias}.rowid"
        gone = self._conn.execute(
            "SELECT 1 FROM _dml_tombstones WHERE tbl = ? AND del_seq > ? AND ins_seq <= ? LIMIT 1",
            (plan.sql, seq, seq),
        ).fetchone()
        if gone is None:
            return f"{plan.sql} AS {alias}", [], [f"{alias}.{_HIDDEN_SEQ} <= ?"], [seq], f"{alias}.rowid"
        source, params = _at(plan, seq)
        return f"{source} AS {alias}", params, [], [], f"{alias}._rowid"

    def _path_sql(
        self, query: PathQuery, snapshot: str | None, *, count: bool
    ) -> tuple[_Plan, tuple[str, ...], str | None, list[Any]]:
        seq = self._snapshot_seq(snapshot) if snapshot is not None else None
        plans = [self._plan(s.schema, s.table) for s in query.steps]
        for i, (step, plan) in enumerate(zip(query.steps, plans, strict=True)):
            check_columns(plan.table, columns_of(step.filter))
            if i:
                check_columns(plans[i - 1].table, [step.via or ""])
                check_columns(plan.table, [step.target_column or ""])
        last = plans[-1]
        names = tuple(query.columns) if query.columns else last.table.column_names
        check_columns(last.table, names)
        if query.limit is not None and query.limit <= 0:
            return last, names, None, []
        inner: tuple[str, list[Any]] | None = None
        sql = ""
        params: list[Any] = []
        for i, (step, plan) in enumerate(zip(query.steps, plans, strict=True)):
            alias = f"p{i}"
            source, sparams, sconds, scparams, _ = self._snap(plan, seq, alias)
            conds: list[str] = list(sconds)
            cparams: list[Any] = list(scparams)
            if step.filter is not None:
                fsql, fparams = _filter_sql(plan, step.filter, alias + ".")
                conds.append(fsql)
                cparams.extend(fparams)
            if inner is not None:
                conds.append(f"{alias}.{_q(step.target_column or '')} IN ({inner[0]})")
                cparams.extend(inner[1])
            is_last = i == len(plans) - 1
            if not is_last:
                nxt = query.steps[i + 1].via or ""
                conds.append(f"{alias}.{_q(nxt)} IS NOT NULL")
                head = f"SELECT {alias}.{_q(nxt)} FROM {source}"
            elif count:
                head = f"SELECT count(*) FROM {source}"
            else:
                head = f"SELECT {','.join(alias + '.' + _q(c) for c in names)} FROM {source}"
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
        return last, names, sql, params


class _State:
    __slots__ = ("next_rid", "now", "rids", "seq", "user")

    def __init__(self, next_rid: int, seq: int, now: str, user: str | None) -> None:
        self.next_rid = next_rid
        self.seq = seq
        self.now = now
        self.user = user
        self.rids: dict[str, RID] = {}


def _conditions(plan: _Plan, items: list[tuple[str, Any, bool]], prefix: str) -> tuple[list[str], list[Any]] | None:
    """SQL conditions and parameters for ``where_items`` on ``plan``'s table (columns prefixed with
    ``prefix``, e.g. ``"s."``); None when a condition can match no row (an empty list of values)."""
    conds: list[str] = []
    params: list[Any] = []
    for col, value, many in items:
        name = prefix + _q(col)
        if many:
            vals = [v for v in value if v is not None]
            if not vals and None not in value:
                return None
            parts = []
            if len(vals) > _CHUNK:  # one parameter, however long the list (SQLite caps host parameters)
                parts.append(f"{name} IN (SELECT value FROM json_each(?))")
                params.append(json.dumps([plan.encode(col, v) for v in vals]))
            elif vals:
                parts.append(f"{name} IN ({','.join('?' * len(vals))})")
                params.extend(plan.encode(col, v) for v in vals)
            if None in value:
                parts.append(f"{name} IS NULL")
            conds.append("(" + " OR ".join(parts) + ")")
        elif value is None:
            conds.append(f"{name} IS NULL")
        else:
            conds.append(f"{name} = ?")
            params.append(plan.encode(col, value))
    return conds, params


def _filter_sql(plan: _Plan, f: Any, prefix: str) -> tuple[str, list[Any]]:
    """SQL (with parameters) for a filter record of ``deriva_ml.core.filters`` on ``plan``'s table."""
    if isinstance(f, Cmp):
        name = prefix + _q(f.column)
        if f.op == "null":
            return f"{name} IS NULL", []
        return f"{name} {_SQL_OPS[f.op]} ?", [plan.encode(f.column, f.value)]
    if isinstance(f, In):
        name = prefix + _q(f.column)
        vals = [v for v in f.values if v is not None]
        parts: list[str] = []
        params: list[Any] = []
        if len(vals) > _CHUNK:  # one parameter, however long the list (SQLite caps host parameters)
            parts.append(f"{name} IN (SELECT value FROM json_each(?))")
            params.append(json.dumps([plan.encode(f.column, v) for v in vals]))
        elif vals:
            parts.append(f"{name} IN ({','.join('?' * len(vals))})")
            params.extend(plan.encode(f.column, v) for v in vals)
        if None in f.values:
            parts.append(f"{name} IS NULL")
        return ("(" + " OR ".join(parts) + ")" if parts else "0"), params
    if isinstance(f, And_ | Or_):
        if not f.parts:
            return ("1" if isinstance(f, And_) else "0"), []
        sqls, params = [], []
        for p in f.parts:
            s, ps = _filter_sql(plan, p, prefix)
            sqls.append(s)
            params.extend(ps)
        return "(" + (" AND " if isinstance(f, And_) else " OR ").join(sqls) + ")", params
    if isinstance(f, Not):
        s, ps = _filter_sql(plan, f.part, prefix)
        return f"(NOT {s})", ps
    raise ValidationError(f"not a filter: {f!r}")


_SQL_OPS = {"eq": "=", "lt": "<", "leq": "<=", "gt": ">", "geq": ">="}


def _row_json(plan: _Plan) -> str:
    cols = (*SYSTEM_COLUMNS, *plan.user_cols)
    return "json_object(" + ", ".join(f"'{c.replace(chr(39), chr(39) * 2)}', {_q(c)}" for c in cols) + ")"


def _tombstone(cur: sqlite3.Cursor, plan: _Plan, cond: str, params: list[Any], seq: int) -> None:
    """Keep the rows about to be deleted by batch ``seq`` (so reads at earlier snapshots still see them)."""
    cur.execute(
        f"INSERT INTO _dml_tombstones (tbl, rid, row_id, ins_seq, del_seq, row) "
        f"SELECT ?, RID, rowid, {_HIDDEN_SEQ}, ?, {_row_json(plan)} FROM {plan.sql} WHERE {cond}",
        [plan.sql, seq, *params],
    )


def _at(plan: _Plan, seq: int) -> tuple[str, list[Any]]:
    """A FROM source of ``plan``'s table as it was at snapshot ``seq``: rows inserted by then that still
    exist, plus rows deleted after it (current values: updates are not versioned). Has ``_rowid``."""
    cols = (*SYSTEM_COLUMNS, *plan.user_cols)
    now = ",".join(_q(c) for c in cols)
    old = ",".join(f"json_extract(row, ?) AS {_q(c)}" for c in cols)
    sql = (
        f"(SELECT rowid AS _rowid, {now} FROM {plan.sql} WHERE {_HIDDEN_SEQ} <= ? "
        f"UNION ALL SELECT row_id AS _rowid, {old} FROM _dml_tombstones "
        f"WHERE tbl = ? AND ins_seq <= ? AND del_seq > ?)"
    )
    paths = ['$."' + c + '"' for c in cols]
    return sql, [seq, *paths, plan.sql, seq, seq]


def _unique_cols(msg: str) -> list[str]:
    # "UNIQUE constraint failed: deriva-ml:Workflow_Type.Name, deriva-ml:Workflow_Type.ID"
    body = msg.split("failed:", 1)[-1]
    return [part.strip().rsplit(".", 1)[-1] for part in body.split(",") if part.strip()]


def _set_wal(conn: sqlite3.Connection, busy_timeout: float) -> None:
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


def _busy_or(err: sqlite3.Error, message: str) -> CatalogError:
    text = str(err).lower()
    if "locked" in text or "busy" in text:
        return CatalogBusy(f"{message}: {err} (another process holds the lock; retry later)")
    return CatalogError(message)


def _status_triggers(cur: sqlite3.Cursor, t: TableDef) -> None:
    """Triggers that refuse an ``Execution.Status`` value that is not an execution status (a CHECK that
    can be added to an existing file; ``IF NOT EXISTS`` makes it idempotent)."""
    if t.column(STATUS_COLUMN) is None:
        return
    name = _sql_name(t.schema, t.name)
    allowed = ",".join("'" + s.value + "'" for s in STATUS_ORDER)
    valid = ", ".join(s.value for s in STATUS_ORDER)
    for event in ("INSERT", f"UPDATE OF {_q(STATUS_COLUMN)}"):
        tag = "insert" if event == "INSERT" else "update"
        cur.execute(
            f"CREATE TRIGGER IF NOT EXISTS {_q(name + ':status:' + tag)} BEFORE {event} ON {_q(name)} "
            f"WHEN NEW.{_q(STATUS_COLUMN)} IS NOT NULL AND NEW.{_q(STATUS_COLUMN)} NOT IN ({allowed}) "
            f"BEGIN SELECT RAISE(ABORT, 'Execution.Status: not an execution status (valid: {valid})'); END"
        )


def ensure_status_constraint(catalog: SQLiteCatalog) -> None:
    """Add the status-value triggers to a catalog made before they existed (idempotent migration)."""
    t = catalog.model().table(STATUS_SCHEMA, STATUS_TABLE)
    if t is None or not catalog.guard_status or t.column(STATUS_COLUMN) is None:
        return
    name = _sql_name(t.schema, t.name)
    with catalog._lock:
        (have,) = catalog.connection.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name IN (?, ?)",
            (name + ":status:insert", name + ":status:update"),
        ).fetchone()
        if have == 2:
            return
        cur = catalog.connection.cursor()
        catalog._begin(cur)
        try:
            _status_triggers(cur, t)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise


def _ddl(t: TableDef) -> list[str]:
    name = _sql_name(t.schema, t.name)
    parts = [
        '"RID" TEXT PRIMARY KEY NOT NULL',
        '"RCT" TEXT NOT NULL',
        '"RMT" TEXT NOT NULL',
        '"RCB" TEXT',
        '"RMB" TEXT',
        f"{_HIDDEN_SEQ} INTEGER NOT NULL",
    ]
    for c in t.columns:
        sql_type = _SQL_TYPES.get(c.type, "TEXT")
        parts.append(f"{_q(c.name)} {sql_type}{'' if c.nullok else ' NOT NULL'}")
    for k in t.keys:
        if k.columns != ("RID",):
            parts.append(f"UNIQUE ({', '.join(_q(c) for c in k.columns)})")
    for fk in t.foreign_keys:
        parts.append(
            f"FOREIGN KEY ({', '.join(_q(c) for c in fk.columns)}) REFERENCES "
            f"{_q(_sql_name(fk.pk_schema, fk.pk_table))} ({', '.join(_q(c) for c in fk.pk_columns)}) "
            f"ON DELETE {fk.on_delete}"
        )
    stmts = [f"CREATE TABLE {_q(name)} (\n  " + ",\n  ".join(parts) + "\n) STRICT"]
    seen: set[tuple[str, ...]] = {tuple(k.columns) for k in t.keys}
    for fk in t.foreign_keys:
        cols = tuple(fk.columns)
        if cols in seen or any(k.columns[: len(cols)] == cols for k in t.keys):
            continue
        seen.add(cols)
        index = _q(name + ":fk:" + ",".join(cols))
        stmts.append(f"CREATE INDEX {index} ON {_q(name)} ({', '.join(_q(c) for c in cols)})")
    stmts.append(f"CREATE INDEX {_q(name + ':seq')} ON {_q(name)} ({_HIDDEN_SEQ})")
    return stmts


# ---------------------------------------------------------------------------------------------- local home

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def catalog_home(root: Path | None = None) -> Path:
    """Where embedded catalogs live: ``root``, else ``$DERIVA_ML_HOME``, else ``~/.deriva-ml``."""
    if root is not None:
        return Path(root)
    env = os.environ.get("DERIVA_ML_HOME")
    return Path(env) if env else Path.home() / ".deriva-ml"


def open_local_catalog(name: str, root: Path | None = None, *, journal: bool = False, **kwargs: Any) -> SQLiteCatalog:
    """Open (creating on first use) the embedded catalog ``<home>/catalogs/<name>/catalog.sqlite``.

    A new catalog gets the deriva-ml schema and its seeded terms; opening again changes nothing. With
    ``journal=True`` every later write is journalled in its own transaction (the basis of ``deriva_ml.sync``).
    """
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in (".", ".."):
        raise ValidationError(
            f"catalog name {name!r} is not valid: use letters, digits, '_', '-' or '.', starting with a "
            f"letter or digit, no path separators"
        )
    path = catalog_home(root) / "catalogs" / name / "catalog.sqlite"
    catalog = SQLiteCatalog(path, **kwargs)
    try:
        ensure_ml_schema(catalog)
    except BaseException:
        catalog.close()
        raise
    # journalled from here on (the deriva-ml schema and its seeded terms are every catalog's, not a change)
    catalog.journal = journal
    return catalog


def ensure_ml_schema(catalog: SQLiteCatalog) -> None:
    """Create the deriva-ml tables that are missing and insert missing seeded terms (idempotent)."""
    catalog.model(refresh=True)
    missing = create_missing_tables(catalog, ML_TABLES)  # another process may be creating them too
    ensure_status_constraint(catalog)
    seeded = catalog.query(ML_SCHEMA, "Asset_Role", columns=["Name"])
    if {r["Name"] for r in seeded} >= {"Input", "Output"} and not missing:
        return
    catalog.apply(seed_batch())
