"""The crash-safe output manifest of one execution.

Every ``asset_file_path`` registration is committed at once to a small SQLite database in the
execution's working directory, so a process that dies (``kill -9``, the OOM killer, a crash) loses nothing
it had registered. Commits are in WAL mode at ``synchronous=NORMAL``: a commit is in the operating system
when it returns (which survives the process) and is made power-loss durable, with every commit before it,
by :meth:`Manifest.make_durable` (one fsync of the WAL). The execution calls it before each catalog write;
it syncs when an *intent* was committed since the last sync: what to upload and how (a registration, its
metadata, asset types or seal, a discard, a staged feature value, the execution's record at creation). So
the intents are on disk before the catalog can say the run ended or point at its files. *Progress* (an
object stored, a row cataloged, a status copied from the catalog, the lease) may lag after a power loss:
recovery re-derives it (a re-put by MD5 finds the object, a probe by URL finds the row, the status is read
from the catalog). No fsync per registration: the files registered are the user's and not fsynced either,
and the embedded catalog makes the same trade (``docs/catalog.md``).

Each entry moves ``registered -> stored -> cataloged``; an upload resumes from whatever state entries were
left in, so calling it again (in the same or a new process) finishes only the rest.

An entry also records what was staged (an existing file's resolved path and its device/inode, so a swap is
detected) and its *seal* (length, MD5, mtime and inode taken when the run ended normally): an output
without a seal may be torn (see ``docs/security.md``). Every SQLite error is raised as
:class:`ManifestError` naming the file.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import attrs

from deriva_ml.core.codec import parse_json
from deriva_ml.core.convert import json_text
from deriva_ml.core.errors import ExecutionError
from deriva_ml.store._files import fsync_file

REGISTERED = "registered"
STORED = "stored"
CATALOGED = "cataloged"


def staged_table_sql(
    name: str, target: str, columns: Sequence[str], state: str, after: Sequence[str] = (), unique: str = ""
) -> str:
    """``CREATE TABLE`` of a manifest table of staged rows (outputs, feature values): an autoincrement
    ``key``, the ``schema`` and ``target`` table the row goes to, its ``columns``, a ``state`` starting at
    ``state``, then ``after`` and an optional ``UNIQUE (unique)`` constraint."""
    body = [
        "key INTEGER PRIMARY KEY AUTOINCREMENT",
        "schema TEXT NOT NULL",
        f"{target} TEXT NOT NULL",
        *columns,
        f"state TEXT NOT NULL DEFAULT '{state}'",
        *after,
        *([f"UNIQUE ({unique})"] if unique else []),
    ]
    return f"CREATE TABLE IF NOT EXISTS {name} (\n    " + ",\n    ".join(body) + "\n);\n"


#: Columns added after the first release (an older manifest gets them with ALTER TABLE).
_ADDED_COLUMNS = {
    "staged_source": "TEXT",
    "staged_dev": "INTEGER",
    "staged_ino": "INTEGER",
    "sealed_md5": "TEXT",
    "sealed_length": "INTEGER",
    "sealed_mtime_ns": "INTEGER",
    "sealed_ino": "INTEGER",
}
_ENTRY_COLUMNS = (
    "path TEXT NOT NULL UNIQUE",
    "filename TEXT NOT NULL",
    "description TEXT",
    "asset_types TEXT NOT NULL DEFAULT '[]'",
    "metadata TEXT NOT NULL DEFAULT '{}'",
)
_AFTER_STATE = ("url TEXT", "md5 TEXT", "length INTEGER", "asset_rid TEXT", "registered_at REAL NOT NULL")
_SCHEMA = (
    staged_table_sql(
        "entry",
        "asset_table",
        _ENTRY_COLUMNS,
        REGISTERED,
        (*_AFTER_STATE, *(f"{c} {t}" for c, t in _ADDED_COLUMNS.items())),
    )
    + "CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value TEXT NOT NULL);\n"
)


def _types_column(types: Sequence[str]) -> str:
    """The ``asset_types`` column: a JSON list (ASCII, as every manifest has been written)."""
    return json_text(list(types), ascii_only=True, default=None)


def _metadata_column(metadata: Mapping[str, Any]) -> str:
    """The ``metadata`` column: a JSON object, keys sorted, values JSON does not know as text."""
    return json_text(dict(metadata), sort_keys=True, ascii_only=True)


class ManifestError(ExecutionError):
    """The manifest database could not be read or written (corrupt, disk full, read-only...)."""

    def __init__(self, path: Path, action: str, exc: BaseException, hint: str = "") -> None:
        self.path = path
        self.corrupt = hint == _CORRUPT_HINT
        super().__init__(f"manifest {str(path)!r}: cannot {action}: {type(exc).__name__}: {exc}" + hint)


_CORRUPT_HINT = (
    "; the file is not a usable SQLite database: ml.restore_execution(rid) sets it aside and rebuilds the "
    "manifest from the catalog and the execution directory"
)


@attrs.frozen
class Seal:
    """What an output file was when it was sealed (the run ended normally)."""

    md5: str
    length: int
    mtime_ns: int
    ino: int


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
    staged_source: str | None = None
    staged_dev: int | None = None
    staged_ino: int | None = None
    seal: Seal | None = None


class Manifest:
    """Registered outputs of one execution, persisted in ``<working_dir>/manifest.sqlite``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._depth = 0  # > 0 while a transaction is open (batch() and the writes joining it)
        self._unsynced = False  # intents committed since the last make_durable(): in the OS, not yet fsynced
        self._intent = False  # the open transaction writes an intent (see _txn)
        self._file_synced = False  # the database file and the directory entries fsynced (once per connection)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ManifestError(path, "create its directory", exc) from exc
        fresh = not path.exists()
        try:
            self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise ManifestError(path, "open", exc) from exc
        try:
            self._db.row_factory = sqlite3.Row
            if fresh:
                self._create()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # see the module doc and make_durable()
            self._db.executescript(_SCHEMA)  # no write when the tables exist
            have = {r[1] for r in self._db.execute("PRAGMA table_info(entry)")}
            for col, kind in _ADDED_COLUMNS.items():  # a manifest written by an older deriva_ml
                if col not in have:
                    self._db.execute(f"ALTER TABLE entry ADD COLUMN {col} {kind}")
            self._db.execute("SELECT count(*) FROM entry").fetchone()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            corrupt = not isinstance(exc, sqlite3.OperationalError) or "malformed" in str(exc)
            raise ManifestError(path, "open", exc, _CORRUPT_HINT if corrupt else "") from exc

    def _create(self) -> None:
        """A new manifest: WAL mode and the schema written without an fsync each (switching a new file to WAL
        goes through a rollback journal: several fsyncs), checkpointed into the file. It is made durable with
        the first commits by :meth:`make_durable` (the database file and the directory are fsynced then):
        nothing is registered before that, and a torn file is a corrupt manifest, which restore rebuilds."""
        db = self._db
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._unsynced = True

    def close(self) -> None:
        self._db.close()

    def _error(self, action: str, exc: sqlite3.Error) -> ManifestError:
        corrupt = isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)
        return ManifestError(self.path, action, exc, _CORRUPT_HINT if corrupt else "")

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise self._error("read", exc) from exc

    @contextmanager
    def batch(self) -> Iterator[Manifest]:
        """Group every write made inside the block into one transaction: one commit (one fsync) at the end.

        Nothing inside is durable until the block ends; then all of it is, at once. An exception inside
        rolls every write of the block back. Blocks nest (an inner block joins the outer one). Use it where
        the writes are one step, e.g. sealing all outputs, or the record, configuration and workflow of a
        new execution; not around ``register`` calls whose durability the caller relies on at once.
        """
        with self._txn():
            yield self

    @contextmanager
    def _txn(self, *, intent: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction (joining an open one). ``intent=False``: it records only progress (see the
        module doc), which the next :meth:`make_durable` does not wait for."""
        if self._depth:  # inside batch(): join its transaction
            self._intent = self._intent or intent
            self._depth += 1
            try:
                yield self._db
            finally:
                self._depth -= 1
            return
        for attempt in range(50):
            try:
                self._db.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:  # locked by another process of this execution
                if "locked" not in str(exc) or attempt == 49:
                    raise self._error("write", exc) from exc
                time.sleep(0.05)
            except sqlite3.Error as exc:
                raise self._error("write", exc) from exc
        self._depth, self._intent = 1, intent
        try:
            yield self._db
        except BaseException as exc:
            self._depth = 0
            with suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise self._error("write", exc) from exc
            raise
        else:
            self._depth = 0
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                with suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise self._error("write", exc) from exc
            if self._intent:
                self._unsynced = True

    def make_durable(self) -> bool:
        """Make every commit so far durable against a power loss: one fsync of the write-ahead log (whose
        frames hold every commit not yet checkpointed; a checkpoint fsyncs what it moves into the database
        file), and once per connection the database file and its directory. A no-op when no intent was
        committed since the last call (progress alone waits for the next one). True when it synced."""
        if not self._unsynced:
            return False
        wal = self.path.with_name(self.path.name + "-wal")
        try:
            with suppress(FileNotFoundError):  # none: checkpointed and removed by the last connection to close
                fsync_file(wal)
            if not self._file_synced:  # a new manifest's schema, or pages an earlier process checkpointed
                fsync_file(self.path)
                if os.name == "posix":  # the entries of the file and its log (a directory cannot be opened elsewhere)
                    fsync_file(self.path.parent)
                self._file_synced = True
        except OSError as exc:
            raise ManifestError(self.path, "make durable", exc) from exc
        self._unsynced = False
        return True

    # ---------------------------------------------------------------------------------- key/value state

    def get_state(self, name: str) -> str | None:
        rows = self._read("SELECT value FROM state WHERE name=?", (name,))
        return None if not rows else str(rows[0][0])

    def set_state(self, name: str, value: str) -> None:
        self.set_states({name: value})

    def set_states(self, values: Mapping[str, str], *, intent: bool = True) -> None:
        """Several key/value states in one transaction (``intent=False``: a copy of what the catalog holds,
        such as the record after a status change, or the lease)."""
        if not values:
            return
        with self._txn(intent=intent) as db:
            db.executemany(
                "INSERT INTO state(name, value) VALUES(?, ?) ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                list(values.items()),
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
        staged: tuple[str, int, int] | None = None,
    ) -> ManifestEntry:
        """Record a file for upload (committed before returning). Re-registering a path updates it.

        ``staged`` is ``(resolved source path, st_dev, st_ino)`` of an existing file staged by symlink."""
        src, dev, ino = staged if staged is not None else (None, None, None)
        with self._txn() as db:
            cur = db.execute(
                """INSERT INTO entry(schema, asset_table, path, filename, description, asset_types, metadata,
                                     registered_at, staged_source, staged_dev, staged_ino)
                   VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(path) DO UPDATE SET schema=excluded.schema, asset_table=excluded.asset_table,
                       filename=excluded.filename, description=excluded.description,
                       asset_types=excluded.asset_types, metadata=excluded.metadata,
                       staged_source=excluded.staged_source, staged_dev=excluded.staged_dev,
                       staged_ino=excluded.staged_ino,
                       sealed_md5=CASE WHEN entry.state='cataloged' THEN entry.sealed_md5 ELSE NULL END,
                       state=CASE WHEN entry.state='cataloged' THEN entry.state ELSE 'registered' END"""
                + _RETURNING,
                (
                    schema,
                    asset_table,
                    path,
                    filename,
                    description,
                    _types_column(asset_types),
                    _metadata_column(metadata or {}),
                    time.time(),
                    src,
                    dev,
                    ino,
                ),
            )
            row = cur.fetchone() if _RETURNING else None
        entry = self._entry(row) if row is not None else self.get(path)
        assert entry is not None
        return entry

    def seal(self, key: int, seal: Seal | None) -> None:
        """Record (or, with None, clear) the seal of an entry."""
        self.seal_many({key: seal})

    def seal_many(self, seals: Mapping[int, Seal | None]) -> None:
        """Record (or, with None, clear) the seals of several entries in one transaction."""
        if not seals:
            return
        rows = [
            (None, None, None, None, key) if seal is None else (seal.md5, seal.length, seal.mtime_ns, seal.ino, key)
            for key, seal in seals.items()
        ]
        with self._txn() as db:
            db.executemany(
                "UPDATE entry SET sealed_md5=?, sealed_length=?, sealed_mtime_ns=?, sealed_ino=? WHERE key=?", rows
            )

    def set_asset_types(self, key: int, types: Sequence[str]) -> None:
        with self._txn() as db:
            db.execute("UPDATE entry SET asset_types=? WHERE key=?", (_types_column(types), key))

    def discard(self, key: int) -> None:
        """Forget an entry not yet cataloged."""
        with self._txn() as db:
            db.execute("DELETE FROM entry WHERE key=? AND state!='cataloged'", (key,))

    def set_metadata(self, path: str, column: str, value: Any) -> None:
        with self._txn() as db:
            row = db.execute("SELECT metadata, state FROM entry WHERE path=?", (path,)).fetchone()
            if row is None:
                raise KeyError(path)
            meta = parse_json(row[0], f"{self.path}: metadata of {path}")
            meta[column] = value
            db.execute("UPDATE entry SET metadata=? WHERE path=?", (_metadata_column(meta), path))

    def get(self, path: str) -> ManifestEntry | None:
        rows = self._read(f"SELECT {_READ_COLUMNS} FROM entry WHERE path=?", (path,))
        return None if not rows else self._entry(rows[0])

    def entries(self, state: str | None = None) -> list[ManifestEntry]:
        if state is None:
            rows = self._read(f"SELECT {_READ_COLUMNS} FROM entry ORDER BY key")
        else:
            rows = self._read(f"SELECT {_READ_COLUMNS} FROM entry WHERE state=? ORDER BY key", (state,))
        return [self._entry(r) for r in rows]

    def mark_stored(self, key: int, *, url: str, md5: str, length: int) -> None:
        self.mark_stored_many([(key, url, md5, length)])

    def mark_stored_many(self, stored: Sequence[tuple[int, str, str, int]]) -> None:
        """``(key, url, md5, length)`` of objects now in the store, in one transaction."""
        if not stored:
            return
        with self._txn(intent=False) as db:  # progress: a re-put of the same bytes finds the object
            db.executemany(
                "UPDATE entry SET state='stored', url=?, md5=?, length=? WHERE key=?",
                [(url, md5, length, key) for key, url, md5, length in stored],
            )

    def mark_cataloged(self, rids: Mapping[int, str]) -> None:
        with self._txn(intent=False) as db:  # progress: a probe by URL finds the row
            db.executemany(
                "UPDATE entry SET state='cataloged', asset_rid=? WHERE key=?", [(rid, key) for key, rid in rids.items()]
            )

    @staticmethod
    def _entry(r: Sequence[Any]) -> ManifestEntry:
        """An entry from a row of ``SELECT {_READ_COLUMNS}`` (by position: the plain fields, then the JSON
        columns, then the seal's four)."""
        n, cut = len(_PLAIN_FIELDS), _TYPES_INDEX
        path = r[_PATH_INDEX]
        types, meta = r[n], r[n + 1]
        md5, length, mtime_ns, ino = r[n + 2 : n + 6]
        fields: tuple[Any, ...] = (
            *r[:cut],
            _asset_types(types, path),
            {} if meta == "{}" else parse_json(meta, f"manifest.sqlite: metadata of {path}"),
            *r[cut:n],
            None if md5 is None else Seal(md5, length, mtime_ns, ino),
        )
        return ManifestEntry(*fields)


@functools.lru_cache(maxsize=256)
def _parsed_types(text: str) -> tuple[str, ...]:
    """The asset types of an ``asset_types`` column, parsed once per distinct text (a few per manifest)."""
    return tuple(parse_json(text, "asset_types"))


def _asset_types(text: str, path: str) -> tuple[str, ...]:
    try:
        return _parsed_types(text)
    except ValueError:  # parsed again for an error that names the entry
        return tuple(parse_json(text, f"manifest.sqlite: asset_types of {path}"))


#: ManifestEntry fields read as they are from the ``entry`` column of the same name, in the record's order.
_PLAIN_FIELDS = tuple(f.name for f in attrs.fields(ManifestEntry) if f.name not in ("asset_types", "metadata", "seal"))
_PATH_INDEX = _PLAIN_FIELDS.index("path")
#: ``asset_types`` and ``metadata`` follow this many plain fields in the record (and ``seal`` comes last).
_TYPES_INDEX = [f.name for f in attrs.fields(ManifestEntry)].index("asset_types")
assert [f.name for f in attrs.fields(ManifestEntry)] == [
    *_PLAIN_FIELDS[:_TYPES_INDEX],
    "asset_types",
    "metadata",
    *_PLAIN_FIELDS[_TYPES_INDEX:],
    "seal",
]
#: The columns an entry is read from, in the order ``Manifest._entry`` takes them.
_READ_COLUMNS = ", ".join(
    (*_PLAIN_FIELDS, "asset_types", "metadata", "sealed_md5", "sealed_length", "sealed_mtime_ns", "sealed_ino")
)
#: The entry written, returned by the same statement (SQLite 3.35+; older libraries read it back after).
_RETURNING = f" RETURNING {_READ_COLUMNS}" if sqlite3.sqlite_version_info >= (3, 35) else ""
