"""SQLite-specific behaviour: the file layout, locking across processes, the local catalog home."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from catalog_support import DOMAIN

from deriva_ml.catalog.port import ML_SCHEMA, Catalog
from deriva_ml.catalog.schema import ML_TABLES
from deriva_ml.catalog.sqlite import (
    FIRST_RID,
    SQLiteCatalog,
    catalog_home,
    decode_rid,
    encode_rid,
    open_local_catalog,
)
from deriva_ml.core.effects import Batch, Insert
from deriva_ml.core.errors import CatalogBusy, ValidationError
from deriva_ml.core.schema_defs import SYSTEM_COLUMNS


def test_is_a_catalog(sqlite_catalog: SQLiteCatalog) -> None:
    assert isinstance(sqlite_catalog, Catalog)


def test_sql_schema_matches_schema_py(sqlite_catalog: SQLiteCatalog) -> None:
    conn = sqlite_catalog.connection
    for t in ML_TABLES:
        name = sqlite_catalog.sql_table_name(t.schema, t.name)
        info = conn.execute(f'PRAGMA table_info("{name}")').fetchall()
        cols = {r[1]: r for r in info}
        assert [c for c in cols if c != "_seq"] == [*SYSTEM_COLUMNS, *(c.name for c in t.columns)], t.name
        for c in t.columns:
            assert bool(cols[c.name][3]) == (not c.nullok), (t.name, c.name)
        # unique keys are real unique indexes
        uniques = set()
        for idx in conn.execute(f'PRAGMA index_list("{name}")').fetchall():
            if idx[2]:
                uniques.add(tuple(r[2] for r in conn.execute(f'PRAGMA index_info("{idx[1]}")')))
        for k in t.keys:
            assert tuple(k.columns) in uniques, (t.name, k.columns)
        fks = {(r[2], r[3], r[4]) for r in conn.execute(f'PRAGMA foreign_key_list("{name}")')}
        for fk in t.foreign_keys:
            target = sqlite_catalog.sql_table_name(fk.pk_schema, fk.pk_table)
            assert (target, fk.columns[0], fk.pk_columns[0]) in fks, (t.name, fk)
        # every foreign key column is indexed
        indexed = {
            conn.execute(f'PRAGMA index_info("{idx[1]}")').fetchone()[2]
            for idx in conn.execute(f'PRAGMA index_list("{name}")').fetchall()
        }
        for fk in t.foreign_keys:
            assert fk.columns[0] in indexed, (t.name, fk.columns)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_model_round_trips_through_the_file(tmp_path: Path) -> None:
    with open_local_catalog("rt", tmp_path) as cat:
        model = cat.model()
    with SQLiteCatalog(tmp_path / "catalogs" / "rt" / "catalog.sqlite", create=False) as cat:
        assert cat.model() == model
        assert all(model.table(t.schema, t.name) == t for t in ML_TABLES)


def test_rid_format() -> None:
    assert encode_rid(FIRST_RID) == "1-0000"
    assert encode_rid(FIRST_RID + 33) == "1-0011"
    assert encode_rid(32**8) == "1-0000-0000"
    for n in (0, 1, FIRST_RID, 12345678901):
        assert decode_rid(encode_rid(n)) == n
    assert decode_rid("1-000I") is None  # not a Crockford digit


def test_clock_and_user(tmp_path: Path) -> None:
    at = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    cat = SQLiteCatalog(tmp_path / "c.sqlite", clock=lambda: at, user="alice")
    from deriva_ml.catalog.sqlite import ensure_ml_schema

    ensure_ml_schema(cat)
    row = cat.apply(Batch([Insert(ML_SCHEMA, "Workflow", [{"Name": "w"}])])).inserted[0][0]
    assert row["RCT"] == row["RMT"] == "2025-01-02T03:04:05.678901+00:00"
    assert row["RCB"] == row["RMB"] == "alice"
    cat.close()


def test_open_local_catalog_home_and_idempotence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DERIVA_ML_HOME", str(tmp_path / "home"))
    assert catalog_home() == tmp_path / "home"
    with open_local_catalog("proj") as cat:
        snap = cat.snapshot()
        n = len(cat.query(ML_SCHEMA, "Asset_Type"))
    assert (tmp_path / "home" / "catalogs" / "proj" / "catalog.sqlite").exists()
    with open_local_catalog("proj") as cat:
        assert cat.snapshot() == snap
        assert len(cat.query(ML_SCHEMA, "Asset_Type")) == n
    for bad in ("a/b", "..", "", "a\\b", "/abs"):
        with pytest.raises(ValidationError):
            open_local_catalog(bad, tmp_path)


def test_busy_when_another_connection_holds_the_lock(tmp_path: Path) -> None:
    cat = open_local_catalog("busy", tmp_path, busy_timeout=0.1)
    other = sqlite3.connect(str(cat.path), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(CatalogBusy):
            cat.apply(Batch([Insert(ML_SCHEMA, "Workflow", [{"Name": "w"}])]))
    finally:
        other.execute("ROLLBACK")
        other.close()
    cat.apply(Batch([Insert(ML_SCHEMA, "Workflow", [{"Name": "w"}])]))
    cat.close()


def _writer(root: str, tag: str, n: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    ok = busy = 0
    with open_local_catalog("shared", Path(root), busy_timeout=10.0) as cat:
        for i in range(n):
            try:
                cat.apply(Batch([Insert(DOMAIN, "Subject", [{"Name": f"{tag}-{i}-{j}"} for j in range(20)])]))
                ok += 1
            except CatalogBusy:
                busy += 1
    queue.put((tag, ok, busy))


def test_two_processes_write_at_once(tmp_path: Path) -> None:
    with open_local_catalog("shared", tmp_path) as cat:
        from catalog_support import domain_tables

        cat.create_tables(domain_tables())
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), tag, 30, queue)) for tag in ("p", "q")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    results = {tag: (ok, busy) for tag, ok, busy in (queue.get() for _ in procs)}
    with open_local_catalog("shared", tmp_path) as cat:
        rows = cat.query(DOMAIN, "Subject", columns=["RID", "Name"])
        assert cat.connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    ok_batches = sum(ok for ok, _ in results.values())
    assert len(rows) == ok_batches * 20
    assert len({r["RID"] for r in rows}) == len(rows)  # no RID handed out twice
    assert all(ok + busy == 30 for ok, busy in results.values())


def _opener(root: str, barrier: multiprocessing.synchronize.Barrier, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    barrier.wait(30)
    try:
        with open_local_catalog("fresh", Path(root), busy_timeout=30.0) as cat:
            queue.put(("ok", len(cat.query(ML_SCHEMA, "Asset_Role"))))
    except Exception as e:  # reported to the test, which names it
        queue.put(("error", repr(e)))


def test_processes_opening_a_new_catalog_at_once_all_succeed(tmp_path: Path) -> None:
    """Parallel sweep jobs open one project catalog that does not exist yet: each sees the deriva-ml tables
    missing, and all but one must find them created under the write lock instead of failing."""
    ctx = multiprocessing.get_context("spawn")
    n = 6
    barrier = ctx.Barrier(n)
    queue = ctx.Queue()
    procs = [ctx.Process(target=_opener, args=(str(tmp_path), barrier, queue)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
    assert [r for r in results if r[0] != "ok"] == []
    with open_local_catalog("fresh", tmp_path) as cat:
        assert len(cat.query(ML_SCHEMA, "Asset_Role")) == results[0][1]
        assert len(cat.model().tables) == len(ML_TABLES)
