"""The embedded catalog: one SQLite file that behaves like a small ERMrest catalog (the port methods).

Layout of the file (see ``docs/catalog.md``):

- ``_dml_meta(key, value)``: ``next_rid`` (a counter that only grows, so RIDs are never reused) and
  ``seq`` (the number of committed batches and DDL changes: the snapshot id);
- ``_dml_tables(schema, name, definition)``: the catalog model, each :class:`TableDef` as JSON;
- ``_dml_model_log(seq, schema, name, definition)``: the model history (each definition with the snapshot
  from which it is in force; a DDL change is a snapshot of its own), for ``model_at``;
- ``_dml_rid_ranges(lo, hi, schema, name)``: which table each run of RIDs was allocated to, so that
  ``resolve_rid`` is one indexed range lookup plus one primary-key lookup;
- ``_dml_tombstones(tbl, rid, row_id, ins_seq, del_seq, row)``: every row a batch deleted (as JSON), so
  that a read at an earlier snapshot still sees it;
- one SQL table per catalog table, named ``"<schema>:<table>"`` (SQLite has no schemas), with the
  system columns, the user columns, a hidden ``_seq`` column (the batch that inserted the row), UNIQUE
  constraints for keys, FOREIGN KEY constraints and an index on every foreign key.

Each batch is one ``BEGIN IMMEDIATE`` transaction; a lock that cannot be had within ``busy_timeout``
raises :class:`CatalogBusy`. The SQL lives in the sibling modules: ``_ddl`` (tables, triggers), ``_writer``
(the effects of a batch), ``_select`` and ``_snapshots`` (reads), ``_errors`` (SQLite errors as ours).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from deriva_ml.catalog import _codec
from deriva_ml.catalog._common import check_columns, find_table, where_items
from deriva_ml.catalog.port import Where
from deriva_ml.catalog.schema import ML_TABLES
from deriva_ml.catalog.sqlite import _select, _writer
from deriva_ml.catalog.sqlite._ddl import ddl, init_meta, set_wal, status_triggers
from deriva_ml.catalog.sqlite._errors import busy_or
from deriva_ml.catalog.sqlite._rid import decode_rid
from deriva_ml.catalog.sqlite._snapshots import existed_at, model_at, snapshot_seq
from deriva_ml.catalog.sqlite._sql import Plan, q, sql_name
from deriva_ml.core.codec import parse_json
from deriva_ml.core.effects import STATUS_SCHEMA, STATUS_TABLE, Batch, BatchResult
from deriva_ml.core.errors import (
    CatalogError,
    ConflictError,
    InvalidRID,
    NotFound,
    RIDNotFound,
    UnknownTable,
    ValidationError,
)
from deriva_ml.core.filters import PathQuery
from deriva_ml.core.rid import RID, is_rid, split_snapshot
from deriva_ml.core.schema_defs import CatalogModel, TableDef


def _utc_now() -> datetime:
    return datetime.now(UTC)


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
            set_wal(self._conn, busy_timeout)
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            init_meta(self._conn)
        except sqlite3.OperationalError as e:
            self._conn.close()
            raise busy_or(e, f"cannot open catalog {self.path}") from e
        self._model: CatalogModel | None = None
        self._plans: dict[tuple[str, str], Plan] = {}
        self._snapshot_models: dict[int, CatalogModel] = {}
        #: When True, every applied batch and DDL change is also written, in the same transaction, to the
        #: ``_dml_journal`` table (see ``deriva_ml.catalog.journal``): the journal can never miss a commit.
        self.journal = False

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
                self._model = self._load_model([r[0] for r in rows], "_dml_tables")
                self._plans = {}
            return self._model

    def model_at(self, snapshot: str) -> CatalogModel:
        """The model at ``snapshot`` (the tables created by then), from the model history; one statement,
        then kept (the model at a past snapshot never changes)."""
        seq = snapshot_seq(snapshot)
        with self._lock:
            found = self._snapshot_models.get(seq)
            if found is None:
                found = self._load_model(model_at(self._conn, seq), "_dml_model_log")
                if seq < int(self.snapshot()):
                    self._snapshot_models[seq] = found
            return found

    def _load_model(self, definitions: list[str], where: str) -> CatalogModel:
        tables = [_codec.load_table(parse_json(d, f"{self.path}: {where}")) for d in definitions]
        order = {(t.schema, t.name): i for i, t in enumerate(ML_TABLES)}
        tables.sort(key=lambda t: (order.get((t.schema, t.name), len(order)), t.schema, t.name))
        return CatalogModel(tuple(tables))

    def _table(self, schema: str, table: str) -> TableDef:
        model = self.model()
        if model.table(schema, table) is None:
            model = self.model(refresh=True)  # another process may have created it
        return find_table(model, schema, table)

    def _plan(self, schema: str, table: str) -> Plan:
        plan = self._plans.get((schema, table))
        if plan is None:
            plan = Plan(self._table(schema, table))
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
                # a DDL change is a snapshot of its own (as on ERMrest): the model at each snapshot is logged
                (seq,) = cur.execute("SELECT value FROM _dml_meta WHERE key = 'seq'").fetchone()
                seq = int(seq) + 1
                cur.execute("UPDATE _dml_meta SET value = ? WHERE key = 'seq'", (seq,))
                for t in tables:
                    for stmt in ddl(t):
                        cur.execute(stmt)
                    definition = json.dumps(_codec.dump_tables((t,))[0], sort_keys=True)
                    cur.execute(
                        "INSERT INTO _dml_tables (schema, name, definition) VALUES (?, ?, ?)",
                        (t.schema, t.name, definition),
                    )
                    cur.execute(
                        "INSERT INTO _dml_model_log (seq, schema, name, definition) VALUES (?, ?, ?, ?)",
                        (seq, t.schema, t.name, definition),
                    )
                    if self.guard_status and (t.schema, t.name) == (STATUS_SCHEMA, STATUS_TABLE):
                        status_triggers(cur, t)
                if self.journal:
                    self._journal(cur, tables=tables)
                cur.execute("COMMIT")
            except BaseException as e:
                cur.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error):
                    raise busy_or(e, f"create_tables failed: {e}") from e
                raise
            self.model(refresh=True)

    # ------------------------------------------------------------------------------------ writes

    def _begin(self, cur: sqlite3.Cursor) -> None:
        try:
            cur.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise busy_or(e, f"catalog {self.path} is busy") from e

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
                state = _writer.State(next_rid, seq, now, self._user)
                inserted = _writer.write(
                    cur, batch.effects, plans, state, guard_status=self.guard_status, tables=self.model().tables
                )
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
                    raise busy_or(e, f"batch failed on {self.path}: {e}") from e
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
            built = _select.query_sql(self._conn, plan, names, items, order_by, limit, snapshot)
            if built is None:
                return []
            sql, params = built
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
        with self._lock:
            src = self._plan(schema, table)
            dst = self._plan(target_schema, target_table)
            names = tuple(columns) if columns else dst.table.column_names
            items = where_items(where)
            check_columns(src.table, [via, *(c for c, _, _ in items)])
            check_columns(dst.table, [target_column, *names])
            built = _select.linked_sql(
                self._conn, src, dst, names, items, via=via, target_column=target_column, limit=limit, snapshot=snapshot
            )
            if built is None:
                return []
            sql, params = built
            what = f"query of {dst.table.qualified} through {src.table.qualified}.{via}"
            return self._select(dst, names, sql, params, what)

    def _select(self, plan: Plan, names: Sequence[str], sql: str, params: list[Any], what: str) -> list[dict[str, Any]]:
        try:
            rows = self._conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as e:
            raise busy_or(e, f"{what} failed: {e}") from e
        return [plan.decode(names, r) for r in rows]

    def snapshot(self) -> str:
        with self._lock:
            (seq,) = self._conn.execute("SELECT value FROM _dml_meta WHERE key = 'seq'").fetchone()
            return str(seq)

    def resolve_rid(self, rid: RID) -> tuple[str, str]:
        if not is_rid(rid):
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
                if not existed_at(self._conn, q(sql_name(schema, name)), base, snapshot_seq(snap)):
                    raise RIDNotFound(rid)
                return schema, name
            if not self._conn.execute(f"SELECT 1 FROM {q(sql_name(schema, name))} WHERE RID = ?", (base,)).fetchone():
                raise RIDNotFound(rid)
            return schema, name

    # ------------------------------------------------------------------------------------ introspection

    def sql_table_name(self, schema: str, table: str) -> str:
        """The SQLite table that holds ``schema:table`` (for tests and tooling)."""
        return sql_name(schema, table)

    @property
    def connection(self) -> sqlite3.Connection:
        """The underlying connection (read-only use: tests and tooling)."""
        return self._conn

    # --- data (branch data): path queries with the filter algebra (deriva_ml.core.filters)

    def select_path(self, query: PathQuery, *, snapshot: str | None = None) -> list[dict[str, Any]]:
        """The rows a :class:`PathQuery` denotes (one statement): the last table's rows reached from the
        filtered rows of each earlier table, each once, in RID order, after ``query.after``, limited."""
        with self._lock:
            seq, plans = self._path_plans(query, snapshot)
            names, sql, params = _select.path_sql(self._conn, plans, query, seq, count=False)
            if sql is None:
                return []
            return self._select(plans[-1], names, sql, params, f"query of {plans[-1].table.qualified}")

    def count_path(self, query: PathQuery, *, snapshot: str | None = None) -> int:
        """How many rows :meth:`select_path` would return without a limit (one statement)."""
        with self._lock:
            seq, plans = self._path_plans(query, snapshot)
            _names, sql, params = _select.path_sql(self._conn, plans, attrs.evolve(query, limit=None), seq, count=True)
            if sql is None:
                return 0
            try:
                (n,) = self._conn.execute(sql, params).fetchone()
            except sqlite3.OperationalError as e:
                raise busy_or(e, f"count failed: {e}") from e
            return int(n)

    def _path_plans(self, query: PathQuery, snapshot: str | None) -> tuple[int | None, list[Plan]]:
        """The snapshot's batch number (None: now) and the plan of each step of ``query``."""
        seq = snapshot_seq(snapshot) if snapshot is not None else None
        return seq, [self._plan(s.schema, s.table) for s in query.steps]
