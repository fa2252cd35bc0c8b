"""The crash-safe output manifest of one execution.

Every ``asset_file_path`` registration is committed at once to a small SQLite database in the
execution's working directory (WAL, ``synchronous=FULL``), so a process that dies loses nothing it had
registered. Each entry moves ``registered -> stored -> cataloged``; an upload resumes from whatever
state entries were left in, so calling it again (in the same or a new process) finishes only the rest.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

REGISTERED = "registered"
STORED = "stored"
CATALOGED = "cataloged"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entry (
    key INTEGER PRIMARY KEY AUTOINCREMENT,
    schema TEXT NOT NULL,
    asset_table TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    filename TEXT NOT NULL,
    description TEXT,
    asset_types TEXT NOT NULL DEFAULT '[]',
    metadata TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'registered',
    url TEXT,
    md5 TEXT,
    length INTEGER,
    asset_rid TEXT,
    registered_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@attrs.frozen
class ManifestEntry:
    """One registered output file."""

    key: int
    schema: str
    asset_table: str
    path: str
    filename: str
    description: str | None
    asset_types: tuple[str, ...]
    metadata: Mapping[str, Any]
    state: str
    url: str | None
    md5: str | None
    length: int | None
    asset_rid: str | None


class Manifest:
    """Registered outputs of one execution, persisted in ``<working_dir>/manifest.sqlite``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _txn(self) -> Iterator[sqlite3.Connection]:
        for attempt in range(50):
            try:
                self._db.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:  # locked by another process of this execution
                if "locked" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.05)
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")

    # ---------------------------------------------------------------------------------- key/value state

    def get_state(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM state WHERE name=?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_state(self, name: str, value: str) -> None:
        with self._txn() as db:
            db.execute(
                "INSERT INTO state(name, value) VALUES(?, ?) ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                (name, value),
            )

    # ---------------------------------------------------------------------------------------- entries

    def register(
        self,
        *,
        schema: str,
        asset_table: str,
        path: str,
        filename: str,
        asset_types: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> ManifestEntry:
        """Record a file for upload (committed before returning). Re-registering a path updates it."""
        with self._txn() as db:
            db.execute(
                """INSERT INTO entry(schema, asset_table, path, filename, description, asset_types, metadata,
                                     registered_at)
                   VALUES(?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(path) DO UPDATE SET schema=excluded.schema, asset_table=excluded.asset_table,
                       filename=excluded.filename, description=excluded.description,
                       asset_types=excluded.asset_types, metadata=excluded.metadata,
                       state=CASE WHEN entry.state='cataloged' THEN entry.state ELSE 'registered' END""",
                (
                    schema,
                    asset_table,
                    path,
                    filename,
                    description,
                    json.dumps(list(asset_types)),
                    json.dumps(dict(metadata or {}), sort_keys=True, default=str),
                    time.time(),
                ),
            )
        entry = self.get(path)
        assert entry is not None
        return entry

    def set_metadata(self, path: str, column: str, value: Any) -> None:
        with self._txn() as db:
            row = db.execute("SELECT metadata, state FROM entry WHERE path=?", (path,)).fetchone()
            if row is None:
                raise KeyError(path)
            meta = json.loads(row[0])
            meta[column] = value
            db.execute(
                "UPDATE entry SET metadata=? WHERE path=?", (json.dumps(meta, sort_keys=True, default=str), path)
            )

    def get(self, path: str) -> ManifestEntry | None:
        row = self._db.execute("SELECT * FROM entry WHERE path=?", (path,)).fetchone()
        return None if row is None else self._entry(row)

    def entries(self, state: str | None = None) -> list[ManifestEntry]:
        if state is None:
            rows = self._db.execute("SELECT * FROM entry ORDER BY key").fetchall()
        else:
            rows = self._db.execute("SELECT * FROM entry WHERE state=? ORDER BY key", (state,)).fetchall()
        return [self._entry(r) for r in rows]

    def mark_stored(self, key: int, *, url: str, md5: str, length: int) -> None:
        with self._txn() as db:
            db.execute("UPDATE entry SET state='stored', url=?, md5=?, length=? WHERE key=?", (url, md5, length, key))

    def mark_cataloged(self, rids: Mapping[int, str]) -> None:
        with self._txn() as db:
            db.executemany(
                "UPDATE entry SET state='cataloged', asset_rid=? WHERE key=?", [(rid, key) for key, rid in rids.items()]
            )

    @staticmethod
    def _entry(r: sqlite3.Row) -> ManifestEntry:
        return ManifestEntry(
            key=r["key"],
            schema=r["schema"],
            asset_table=r["asset_table"],
            path=r["path"],
            filename=r["filename"],
            description=r["description"],
            asset_types=tuple(json.loads(r["asset_types"])),
            metadata=json.loads(r["metadata"]),
            state=r["state"],
            url=r["url"],
            md5=r["md5"],
            length=r["length"],
            asset_rid=r["asset_rid"],
        )
