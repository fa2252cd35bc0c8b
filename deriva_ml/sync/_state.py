"""The progress file of one sync (``sync-<target>.sqlite`` beside the source catalog).

It holds the last journal entry applied, the RID map (source RID -> target RID), the URL map (objects the
target stored under another name) and the group *in flight* (entry range and target snapshot), each step
committed in one SQLite transaction: the basis of the crash safety described in :mod:`deriva_ml.sync`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deriva_ml._util import safe_name
from deriva_ml.catalog.port import Journaled
from deriva_ml.core.codec import parse_json
from deriva_ml.core.errors import ConfigurationError
from deriva_ml.core.rid import RID

if TYPE_CHECKING:
    from deriva_ml.sync import HasPorts


class _State:
    """Progress of syncing one source into one target: a small SQLite file (WAL; each step one commit)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fresh = not path.exists()
        self._conn = sqlite3.connect(str(path), isolation_level=None)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS progress (id INTEGER PRIMARY KEY CHECK (id = 1), last_seq INTEGER NOT NULL, "
            "inflight_first INTEGER, inflight_last INTEGER, inflight_snapshot TEXT)"
        )
        self._conn.execute("CREATE TABLE IF NOT EXISTS rid_map (source TEXT PRIMARY KEY, target TEXT NOT NULL)")
        self._conn.execute("CREATE TABLE IF NOT EXISTS url_map (source TEXT PRIMARY KEY, target TEXT NOT NULL)")
        self._conn.execute("INSERT OR IGNORE INTO progress (id, last_seq) VALUES (1, 0)")
        legacy = path.with_suffix(".json")
        if fresh and legacy.exists():  # progress written by an earlier version: carried over once
            doc = parse_json(legacy.read_bytes(), str(legacy))
            if not isinstance(doc, dict) or not isinstance(doc.get("rid_map"), dict):
                raise ConfigurationError(f"{legacy}: not a sync progress file (no rid_map object)")
            with self._tx():
                self._conn.execute("UPDATE progress SET last_seq = ? WHERE id = 1", (int(doc["last_seq"]),))
                self._conn.executemany("INSERT OR REPLACE INTO rid_map VALUES (?, ?)", doc["rid_map"].items())

    def _tx(self) -> Any:
        conn = self._conn

        class _Tx:
            def __enter__(self) -> None:
                conn.execute("BEGIN IMMEDIATE")

            def __exit__(self, exc_type: object, *_: object) -> None:
                conn.execute("COMMIT" if exc_type is None else "ROLLBACK")

        return _Tx()

    def load(self) -> tuple[int, dict[str, RID], tuple[int, int, str] | None]:
        last, first, last_in, snap = self._conn.execute(
            "SELECT last_seq, inflight_first, inflight_last, inflight_snapshot FROM progress"
        ).fetchone()
        rid_map = {s: RID(t) for s, t in self._conn.execute("SELECT source, target FROM rid_map")}
        inflight = (int(first), int(last_in), str(snap)) if first is not None else None
        return int(last), rid_map, inflight

    def load_urls(self) -> dict[str, str]:
        return {s: t for s, t in self._conn.execute("SELECT source, target FROM url_map")}

    def record_url(self, source_url: str, target_url: str) -> None:
        """One object stored under another name on the target (committed before any row names it)."""
        with self._tx():
            self._conn.execute("INSERT OR REPLACE INTO url_map VALUES (?, ?)", (source_url, target_url))

    def mark_inflight(self, first: int, last: int, snapshot: str) -> None:
        with self._tx():
            self._conn.execute(
                "UPDATE progress SET inflight_first = ?, inflight_last = ?, inflight_snapshot = ? WHERE id = 1",
                (first, last, snapshot),
            )

    def commit(self, last_seq: int, new_map: Mapping[str, RID]) -> None:
        with self._tx():
            if new_map:
                self._conn.executemany("INSERT OR REPLACE INTO rid_map VALUES (?, ?)", new_map.items())
            self._conn.execute(
                "UPDATE progress SET last_seq = ?, inflight_first = NULL, inflight_last = NULL, "
                "inflight_snapshot = NULL WHERE id = 1",
                (last_seq,),
            )

    def close(self) -> None:
        self._conn.close()


def _state_path(source: HasPorts, target: HasPorts) -> Path:
    key = safe_name(f"{target.ports.host.host_name}_{target.ports.host.catalog_id}")
    catalog = source.ports.catalog
    assert isinstance(catalog, Journaled)
    return Path(catalog.path).parent / f"sync-{key}.sqlite"
