"""Embedded catalog throughput next to raw sqlite3 in the same run (run by hand).

    uv run python benchmarks/catalog.py [--rows 10000] [--lookups 1000]

Inserts ``--rows`` rows into a domain table of a fresh embedded catalog in one batch, then looks up
``--lookups`` of them one by one by their unique key. The baseline does the same with raw sqlite3
(WAL, one transaction, ``executemany`` into a table of the same shape incl. RID and system columns).
Target: the catalog reaches >= 30% of the baseline's rows/s.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from deriva_ml.catalog.schema import plain_table
from deriva_ml.catalog.sqlite import FIRST_RID, encode_rid, open_local_catalog
from deriva_ml.core.effects import Batch, Insert
from deriva_ml.core.schema_defs import ColumnDef, KeyDef


def rows(n: int) -> list[dict[str, object]]:
    return [{"Name": f"subject-{i:07d}", "Age": i % 90, "Note": "x" * 20} for i in range(n)]


def raw(path: Path, n: int, lookups: int) -> tuple[float, float]:
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        'CREATE TABLE t ("RID" TEXT PRIMARY KEY, "RCT" TEXT, "RMT" TEXT, "RCB" TEXT, "RMB" TEXT, '
        '"Name" TEXT NOT NULL UNIQUE, "Age" INTEGER, "Note" TEXT)'
    )
    now = "2025-01-01T00:00:00.000000+00:00"
    data = [
        (encode_rid(FIRST_RID + i), now, now, None, None, r["Name"], r["Age"], r["Note"]) for i, r in enumerate(rows(n))
    ]
    t0 = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO t VALUES (?,?,?,?,?,?,?,?)", data)
    conn.execute("COMMIT")
    t1 = time.perf_counter()
    for i in range(0, n, max(1, n // lookups)):
        conn.execute('SELECT * FROM t WHERE "Name" = ?', (f"subject-{i:07d}",)).fetchall()
    t2 = time.perf_counter()
    conn.close()
    return n / (t1 - t0), lookups / (t2 - t1)


def catalog(root: Path, n: int, lookups: int, journal: bool = False) -> tuple[float, float]:
    cat = open_local_catalog("bench", root)
    cat.journal = journal  # DerivaML("local", ...) journals every write (the basis of offline sync)
    cat.create_tables(
        [
            plain_table(
                "bench",
                "Subject",
                [ColumnDef("Name", nullok=False), ColumnDef("Age", "int4"), ColumnDef("Note")],
                keys=[KeyDef(("Name",))],
            )
        ]
    )
    data = rows(n)
    t0 = time.perf_counter()
    cat.apply(Batch([Insert("bench", "Subject", data)]))
    t1 = time.perf_counter()
    for i in range(0, n, max(1, n // lookups)):
        cat.query("bench", "Subject", {"Name": f"subject-{i:07d}"})
    t2 = time.perf_counter()
    cat.close()
    return n / (t1 - t0), lookups / (t2 - t1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--lookups", type=int, default=1_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    best_raw = (0.0, 0.0)
    best_cat = (0.0, 0.0)
    best_jrn = (0.0, 0.0)
    for k in range(args.repeat):
        with tempfile.TemporaryDirectory() as d:
            r = raw(Path(d) / "raw.sqlite", args.rows, args.lookups)
            c = catalog(Path(d) / f"home{k}", args.rows, args.lookups)
            j = catalog(Path(d) / f"journal{k}", args.rows, args.lookups, journal=True)
        best_raw = (max(best_raw[0], r[0]), max(best_raw[1], r[1]))
        best_cat = (max(best_cat[0], c[0]), max(best_cat[1], c[1]))
        best_jrn = (max(best_jrn[0], j[0]), max(best_jrn[1], j[1]))
    print(f"insert {args.rows} rows (best of {args.repeat}):")
    print(f"  raw sqlite3 executemany : {best_raw[0]:>12,.0f} rows/s")
    print(f"  SQLiteCatalog.apply     : {best_cat[0]:>12,.0f} rows/s   ratio {best_cat[0] / best_raw[0]:.0%}")
    print(f"  ... with journal (default): {best_jrn[0]:>9,.0f} rows/s   ratio {best_jrn[0] / best_raw[0]:.0%}")
    print(f"lookup {args.lookups} rows by key, one query each:")
    print(f"  raw sqlite3             : {best_raw[1]:>12,.0f} lookups/s")
    print(f"  SQLiteCatalog.query     : {best_cat[1]:>12,.0f} lookups/s   ratio {best_cat[1] / best_raw[1]:.0%}")


if __name__ == "__main__":
    main()
