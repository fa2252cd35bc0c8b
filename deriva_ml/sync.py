"""Offline replay: sync what was recorded on an embedded catalog into another catalog (e.g. a live server).

The embedded catalog journals every write in the same SQLite transaction that makes it, so the journal
never misses a commit. ``sync(source, target)`` replays the entries the target has not seen yet:

1. tables created offline (domain tables, asset tables) are created in the target when missing;
2. asset files referenced by rows inserted into asset tables are copied from the source object store to
   the target's, under the same content-addressed URL (``/hatrac/<Table>/<md5>.<filename>``), so URL,
   MD5, length and file name — the provenance of each file — are identical;
3. consecutive entries are merged into one target batch (a *group*): every inserted row gets a label, a
   RID produced earlier in the group becomes a ``Ref`` to that label, a RID produced by an earlier group
   is rewritten to the target's RID, and consecutive inserts into (or updates of) one table become one
   effect — one request on ERMrest;
4. progress lives in ``sync-<target>.sqlite`` beside the source catalog: the last entry applied, the RID
   map, and the *in-flight* group. See "Crash safety" below.

Crash safety (a kill at any point, then a rerun, gives exactly the source's rows; a further run is a no-op):

- Before a group is written, its entry range and a target snapshot taken just before the write are
  committed as *in flight*. After the write, the RID map entries, the new last entry and the cleared
  in-flight mark are committed in one transaction.
- A rerun that finds a group in flight does not know how much of it reached the target (a kill between
  the write and its bookkeeping, or, on ERMrest, between two requests of one group). It rebuilds the same
  group from the journal and *redoes* it effect by effect against what the target holds: a row to insert
  is first looked for among the target's rows that did not exist at the recorded snapshot and have the
  same values (columns that a later effect of the group updates are left out of the comparison); a row
  found is adopted (its RID mapped), a row not found is inserted. Updates, deletes and ``on_conflict_skip``
  inserts are applied again (they are idempotent); a compare-and-set whose row already holds the new
  value counts as done. Dataset version snapshots use the recorded snapshot, so a redone version row has
  the same values as the first attempt.
- Objects are content-addressed and copied only when the target lacks them, so a copy interrupted or
  repeated is harmless. Table creation creates only the tables the target lacks.

``DERIVA_ML_SYNC_KILL_AT=<step>:<n>`` (tests only) makes the process SIGKILL itself the n-th time it
reaches ``step``: ``object`` (an object copied), ``ddl`` (tables created, progress not saved),
``inflight`` (group marked in flight, nothing written), ``write`` (group written, progress not saved),
``saved`` (progress saved).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from deriva_ml._log import get_logger
from deriva_ml._progress import open_bar
from deriva_ml._util import safe_name
from deriva_ml.catalog.journal import JournalEntry, map_json, read_journal
from deriva_ml.catalog.port import Journaled
from deriva_ml.core.codec import effect_from_json, effect_to_json, parse_json
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.effects import Batch, Delete, Effect, Insert, Ref, Update, resolve_refs
from deriva_ml.core.errors import ConfigurationError, ConflictError, DerivaMLException, NotFound, ValidationError
from deriva_ml.core.rid import RID

if TYPE_CHECKING:
    from deriva_ml.catalog.port import Catalog
    from deriva_ml.context import Ports


class HasPorts(Protocol):
    """A handle on a catalog (a ``DerivaML``): sync reads and writes through its ports only."""

    @property
    def ports(self) -> Ports: ...


__all__ = ["SyncReport", "sync"]

#: A group is flushed when it holds this many rows (bounds memory, request size and redo work).
GROUP_ROWS = 5000
#: ... or this many journal entries.
GROUP_ENTRIES = 2000

#: Column types compared when a redo looks for a row already written (exact on both backends).
_EXACT_TYPES = frozenset({"text", "markdown", "longtext", "ermrest_rid", "int2", "int4", "int8", "boolean", "serial4"})


def _frozen_map(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


@attrs.frozen
class SyncReport:
    """What one sync did (frozen; ``rid_map`` is a read-only mapping)."""

    entries_applied: int
    objects_copied: int
    bytes_copied: int
    rid_map: Mapping[str, str] = attrs.field(converter=_frozen_map)
    last_seq: int
    #: Journal entries read and decoded by this run (only those after the last synced entry).
    entries_read: int = 0
    #: Target batches (groups) written by this run, a redone one included.
    batches_applied: int = 0
    #: True when this run found a group in flight (an earlier run was interrupted) and redid it.
    recovered: bool = False
    #: Object URLs the target's store gave a different name (the content-addressed name was deleted there
    #: once, so it holds the bytes under ``<md5>-<n>.<filename>``): source URL -> target URL.
    url_map: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)

    def target_rid(self, source_rid: str) -> str:
        """The target's RID of a row synced from the source."""
        return self.rid_map.get(source_rid, source_rid)

    def target_url(self, source_url: str) -> str:
        """The target's URL of an object synced from the source (the same URL unless the name was taken)."""
        return self.url_map.get(source_url, source_url)


# ------------------------------------------------------------------------------------------ kill hook

_KILL_ENV = "DERIVA_ML_SYNC_KILL_AT"
_kill_counts: dict[str, int] = {}


def _step(name: str) -> None:
    """Deterministic fault injection for tests: SIGKILL this process at the n-th arrival at ``name``."""
    spec = os.environ.get(_KILL_ENV)
    if not spec:
        return
    step, _, n = spec.partition(":")
    if step != name:
        return
    _kill_counts[name] = _kill_counts.get(name, 0) + 1
    if _kill_counts[name] == int(n or 1):
        os.kill(os.getpid(), signal.SIGKILL)


# ------------------------------------------------------------------------------------------ state


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


# ------------------------------------------------------------------------------------------ groups


@attrs.frozen
class _Group:
    """Consecutive journal entries as one target batch."""

    first: int
    last: int
    batch: Batch
    #: label in ``batch`` -> the source RID of that row
    produced: Mapping[str, str]
    rows: int
    #: holds a plain update of Execution.Status (a journal written before status writes were compare-and-set)
    status_update: bool = False


def _sets_snapshot(effect: Effect) -> bool:
    return (
        isinstance(effect, Insert | Update)
        and (effect.schema, effect.table) == (ML_SCHEMA, "Dataset_Version")
        and any("Snapshot" in r for r in effect.rows)
    )


def _old_rids(effect: Insert, old_rows: tuple[Mapping[str, Any], ...], rids: Mapping[str, RID]) -> list[str | None]:
    """The source RID of each row of ``effect`` (None for a row the source skipped as a duplicate)."""
    if len(old_rows) == len(effect.rows):
        return [r.get("RID") for r in old_rows]
    remaining = list(old_rows)
    out: list[str | None] = []
    for row in effect.rows:
        sent = resolve_refs(row, rids) if rids else row
        hit = next((o for o in remaining if all(o.get(k) == v for k, v in sent.items())), None)
        if hit is not None:
            remaining.remove(hit)
        out.append(hit.get("RID") if hit is not None else None)
    return out


class _Builder:
    """Turns journal entries into groups (see the module docstring)."""

    def __init__(self, rid_map: Mapping[str, RID]) -> None:
        self.rid_map = rid_map
        self.reset()

    def reset(self) -> None:
        self.effects: list[Effect] = []
        self.first = 0
        self.last = 0
        self.local: dict[str, str] = {}  # source RID -> label, for rows produced in this group
        self.produced: dict[str, str] = {}
        self.rows = 0
        self.solo = False

    def __bool__(self) -> bool:
        return self.first != 0

    def must_flush_before(self, entry: JournalEntry) -> bool:
        if not self:
            return False
        if entry.tables or self.rows >= GROUP_ROWS or self.last - self.first + 1 >= GROUP_ENTRIES:
            return True
        if self.solo or any(_plain_status_update(e) for e in entry.batch.effects):
            return True  # a status change read against the target: its own group (see _status_as_cas)
        for e in entry.batch.effects:
            if _sets_snapshot(e):
                return True  # the snapshot a version names must include the entries before it
            # an effect kind that may not hold Refs needs target RIDs: what it names must be written first
            if not isinstance(e, Insert | Update | Delete) and _names_any(effect_to_json(e), self.local):
                return True
        return False

    def _value(self, v: Any) -> Any:
        if isinstance(v, str):
            label = self.local.get(v)
            if label is not None:
                return Ref(label)
            return self.rid_map.get(v, v)
        return v

    def add(self, entry: JournalEntry, snapshot: str) -> None:
        if not self:
            self.first = entry.seq
        self.last = entry.seq
        self.solo = self.solo or any(_plain_status_update(e) for e in entry.batch.effects)
        aliases: dict[str, str] = {}  # the entry's own labels -> group labels

        def ref(v: Any) -> Any:
            return Ref(aliases[v.label]) if isinstance(v, Ref) else self._value(v)

        def row(r: Mapping[str, Any]) -> dict[str, Any]:
            return {k: ref(v) for k, v in r.items()}

        for i, e in enumerate(entry.batch.effects):
            new: Effect
            if isinstance(e, Insert):
                rows = [row(r) for r in e.rows]
                if _sets_snapshot(e):
                    rows = [{**r, "Snapshot": snapshot} if "Snapshot" in r else r for r in rows]
                labels = [f"{entry.seq}.{i}.{j}" for j in range(len(rows))]
                old_rows = entry.result.inserted[i] if i < len(entry.result.inserted) else ()
                for j, old in enumerate(_old_rids(e, old_rows, entry.result.rids)):
                    if old is not None:
                        self.local[old] = labels[j]
                        self.produced[labels[j]] = old
                for j, own in enumerate(e.labels):
                    if own is not None:
                        aliases[own] = labels[j]
                        old = entry.result.rids.get(own)
                        if old is not None and labels[j] not in self.produced:
                            # a row the source skipped as existing (e.g. a seeded term): map it too
                            self.local[old] = labels[j]
                            self.produced[labels[j]] = old
                new = Insert(e.schema, e.table, rows, labels=labels, on_conflict_skip=e.on_conflict_skip)
                self.rows += len(rows)
            elif isinstance(e, Update):
                rows = [row(r) for r in e.rows]
                if _sets_snapshot(e):
                    rows = [{**r, "Snapshot": snapshot} if "Snapshot" in r else r for r in rows]
                new = Update(e.schema, e.table, rows, key=e.key)
                self.rows += len(rows)
            elif isinstance(e, Delete):
                new = Delete(e.schema, e.table, e.column, [ref(v) for v in e.values], row(e.where))
                self.rows += 1
            else:  # any other kind the codec knows: RIDs rewritten through its JSON form
                new = effect_from_json(map_json(effect_to_json(e), lambda v: self.rid_map.get(v, v)))
                self.rows += 1
            self._append(new)

    def _append(self, new: Effect) -> None:
        prev = self.effects[-1] if self.effects else None
        if (
            isinstance(new, Insert)
            and isinstance(prev, Insert)
            and (prev.schema, prev.table, prev.on_conflict_skip) == (new.schema, new.table, new.on_conflict_skip)
            and not _refs_to(new.rows, set(prev.labels))
        ):
            self.effects[-1] = Insert(
                prev.schema,
                prev.table,
                (*prev.rows, *new.rows),
                labels=(*prev.labels, *new.labels),
                on_conflict_skip=prev.on_conflict_skip,
            )
            return
        if (
            isinstance(new, Update)
            and isinstance(prev, Update)
            and (prev.schema, prev.table, prev.key) == (new.schema, new.table, new.key)
            and not ({_key(r, prev.key) for r in prev.rows} & {_key(r, new.key) for r in new.rows})
        ):
            self.effects[-1] = Update(prev.schema, prev.table, (*prev.rows, *new.rows), key=prev.key)
            return
        self.effects.append(new)

    def take(self) -> _Group:
        group = _Group(self.first, self.last, Batch(tuple(self.effects)), dict(self.produced), self.rows, self.solo)
        self.reset()
        return group


def _names_any(doc: Mapping[str, Any], rids: Mapping[str, str]) -> bool:
    found: list[str] = []
    map_json(doc, lambda v: found.append(v) if v in rids else v)
    return bool(found)


def _codec_has_cas() -> bool:
    try:
        effect_from_json({"kind": "set_status", "writes": [], "skip_lost": False})
    except DerivaMLException:
        return False
    return True


#: Whether the effect codec has a compare-and-set of execution statuses (kind ``set_status``).
_HAS_CAS = _codec_has_cas()


def _plain_status_update(effect: Effect) -> bool:
    return (
        _HAS_CAS
        and isinstance(effect, Update)
        and (effect.schema, effect.table) == (ML_SCHEMA, "Execution")
        and effect.key == ("RID",)
        and any("Status" in r for r in effect.rows)
    )


def _status_as_cas(batch: Batch, target: Catalog) -> Batch:
    """Plain updates of ``Execution.Status`` (journals written before status writes were compare-and-set)
    as the codec's compare-and-set effect (kind ``set_status``), expecting the status the target holds now;
    a row that already holds the new status (a redo) gets only its other columns. Built through the codec's
    JSON form: with a codec that has no such kind, the plain update is kept."""
    effects: list[Effect] = []
    for e in batch.effects:
        if (
            not isinstance(e, Update)
            or not _plain_status_update(e)
            or any(isinstance(v, Ref) for r in e.rows for v in r.values())
        ):
            effects.append(e)
            continue
        rids = [r["RID"] for r in e.rows]
        held = {
            r["RID"]: r.get("Status") for r in target.query(e.schema, e.table, {"RID": rids}, columns=["RID", "Status"])
        }
        writes, rest = [], []
        for r in e.rows:
            if "Status" not in r or held.get(r["RID"]) == r["Status"]:
                other = {k: v for k, v in r.items() if k != "Status"}
                if len(other) > 1:
                    rest.append(other)
                continue
            writes.append(
                {
                    "rid": r["RID"],
                    "expected": held.get(r["RID"]) or "Created",
                    "status": r["Status"],
                    "detail": r.get("Status_Detail") or "",
                    "duration": r.get("Duration"),
                }
            )
            other = {k: v for k, v in r.items() if k not in ("Status", "Status_Detail", "Duration")}
            if len(other) > 1:
                rest.append(other)
        try:
            cas = effect_from_json({"kind": "set_status", "writes": writes, "skip_lost": False}) if writes else None
        except ConfigurationError:  # this codec has no compare-and-set: the adapters take plain updates
            effects.append(e)
            continue
        if rest:
            effects.append(Update(e.schema, e.table, rest, key=e.key))
        if cas is not None:
            effects.append(cas)
    return Batch(tuple(effects))


def _refs_to(rows: Iterable[Mapping[str, Any]], labels: set[str | None]) -> bool:
    return any(isinstance(v, Ref) and v.label in labels for r in rows for v in r.values())


def _key(row: Mapping[str, Any], key: tuple[str, ...]) -> str:
    return json.dumps([row.get(k) if not isinstance(row.get(k), Ref) else ["ref", row[k].label] for k in key])


# ------------------------------------------------------------------------------------------ redo


def _resolve(effect: Effect, rids: Mapping[str, RID]) -> Effect:
    if isinstance(effect, Insert):
        return attrs.evolve(effect, rows=[resolve_refs(r, rids) for r in effect.rows])
    if isinstance(effect, Update):
        return attrs.evolve(effect, rows=[resolve_refs(r, rids) for r in effect.rows])
    if isinstance(effect, Delete):
        values = list(resolve_refs({str(i): v for i, v in enumerate(effect.values)}, rids).values())
        return Delete(effect.schema, effect.table, effect.column, values, resolve_refs(effect.where, rids))
    return effect


def _find_written(
    target: Catalog,
    effect: Insert,
    row: Mapping[str, Any],
    skip: set[str],
    snapshot: str,
    claimed: set[str],
) -> RID | None:
    """A target row that has ``row``'s values and did not exist at ``snapshot`` (and is not claimed yet)."""
    table = target.model().table(effect.schema, effect.table)
    types = {c.name: c.type for c in table.columns} if table is not None else {}
    where = {
        c: v
        for c, v in row.items()
        if c not in skip and v is not None and types.get(c) in _EXACT_TYPES and not isinstance(v, float)
    }
    hits = [r["RID"] for r in target.query(effect.schema, effect.table, where, columns=["RID"])]
    hits = [h for h in hits if h not in claimed]
    if not hits:
        return None
    before = {
        r["RID"] for r in target.query(effect.schema, effect.table, {"RID": hits}, columns=["RID"], snapshot=snapshot)
    }
    new = [h for h in hits if h not in before]
    return RID(new[0]) if new else None


def _redo(target: Catalog, batch: Batch, snapshot: str) -> dict[str, RID]:
    """Apply ``batch`` effect by effect so that what an interrupted attempt already wrote is not written twice."""
    rids: dict[str, RID] = {}
    claimed: set[str] = set()
    effects = batch.effects
    for idx, effect in enumerate(effects):
        later = effects[idx + 1 :]
        if isinstance(effect, Insert) and not effect.on_conflict_skip:
            # columns a later effect of the group may have changed since this row was written
            skip = {
                c
                for e in later
                if isinstance(e, Update) and (e.schema, e.table) == (effect.schema, effect.table)
                for r in e.rows
                for c in r
                if c not in e.key
            }
            rows, labels = [], []
            for j, r in enumerate(effect.rows):
                row = resolve_refs(r, rids)
                label = effect.labels[j] if effect.labels else None
                found = _find_written(target, effect, row, skip, snapshot, claimed)
                if found is not None:
                    claimed.add(found)
                    if label is not None:
                        rids[label] = found
                else:
                    rows.append(row)
                    labels.append(label)
            if rows:
                result = target.apply(Batch((Insert(effect.schema, effect.table, rows, labels=labels),)))
                rids.update(result.rids)
                claimed.update(str(r["RID"]) for rs in result.inserted for r in rs)
            continue
        resolved = _resolve(effect, rids)
        if not isinstance(resolved, Insert | Update | Delete):
            doc = effect_to_json(resolved)
            if "skip_lost" in doc:  # a compare-and-set the first attempt may have applied already
                resolved = effect_from_json({**doc, "skip_lost": True})
        try:
            result = target.apply(Batch((resolved,)))
        except NotFound:
            deleted_later = any(
                isinstance(e, Delete) and (e.schema, e.table) == (effect.schema, effect.table) for e in later
            )
            if isinstance(effect, Update) and deleted_later:
                continue  # the first attempt got as far as the delete
            raise
        except ConflictError as e:
            if getattr(e, "actual", None) is not None and getattr(e, "actual", None) == getattr(e, "target", ...):
                continue  # a compare-and-set that already holds its new value
            raise
        rids.update(result.rids)
    return rids


# ------------------------------------------------------------------------------------------ sync


def _copy_objects(
    source: HasPorts,
    target: HasPorts,
    batch: Batch,
    tmp: Path,
    model: Any,
    counts: list[int],
    url_map: dict[str, str],
    state: _State,
) -> Batch:
    """Copy the objects the batch's asset rows name to the target's store; the batch with each URL the
    target stored under another name rewritten (``url_map``, kept in the progress file)."""
    from deriva_ml.catalog.schema import is_asset

    rewrite = False
    for effect in batch.effects:
        if not isinstance(effect, (Insert, Update)):
            continue
        table = model.table(effect.schema, effect.table)
        if table is None or not is_asset(table):
            continue
        for row in effect.rows:
            url, md5, name = row.get("URL"), row.get("MD5"), row.get("Filename")
            if not url:
                continue
            if url in url_map:
                rewrite = True
            if not md5 or not isinstance(effect, Insert):
                continue
            if target.ports.store.stat(str(url_map.get(url, url))) is not None:
                continue
            local = source.ports.store.get(url, tmp / f"{md5}.bin", md5=md5)
            stored = target.ports.store.put(local, table=effect.table, filename=name or Path(url).name, md5=md5)
            _step("object_put")
            if stored.url != url:
                _check_alternative(url, stored, md5, local.stat().st_size)
                # recorded before any row names it; a kill before this is reconciled on resume: the stat
                # above misses, and the store's put finds the same bytes under the same alternative name
                state.record_url(url, stored.url)
                url_map[url] = stored.url
                rewrite = True
            counts[0] += 1
            counts[1] += stored.length
            local.unlink(missing_ok=True)
            _step("object")
    return _with_target_urls(batch, url_map, model) if rewrite else batch


def _check_alternative(url: str, stored: Any, md5: str, length: int) -> None:
    """The target stored the object under another name: acceptable only as the same bytes under the
    content-addressed alternative ``/hatrac/<Table>/<md5>-<n>.<filename>`` of ``url``."""
    import re

    head, _, last = url.rpartition("/")
    prefix, dot, filename = last.partition(".")
    shape = re.compile(re.escape(f"{head}/{prefix}") + r"-\d+" + re.escape(f"{dot}{filename}") + r"$")
    if not shape.search(stored.url) or (stored.md5 or md5).lower() != md5.lower() or stored.length not in (length, -1):
        raise ValidationError(
            f"target store gives {stored.url} for {url}: provenance would change; the target must store the "
            f"same bytes (MD5 {md5}, {length} bytes) under {url} or its alternative {head}/{prefix}-<n>{dot}{filename}"
        )


def _with_target_urls(batch: Batch, url_map: Mapping[str, str], model: Any) -> Batch:
    """``batch`` with the URL values of asset rows mapped to the target's URLs."""
    from deriva_ml.catalog.schema import is_asset

    effects: list[Effect] = []
    for effect in batch.effects:
        if isinstance(effect, (Insert, Update)):
            table = model.table(effect.schema, effect.table)
            if table is not None and is_asset(table) and any(r.get("URL") in url_map for r in effect.rows):
                rows = [{**r, "URL": url_map[r["URL"]]} if r.get("URL") in url_map else dict(r) for r in effect.rows]
                effect = attrs.evolve(effect, rows=rows)
        effects.append(effect)
    return Batch(effects)


def _new_map(group: _Group, rids: Mapping[str, RID]) -> dict[str, RID]:
    return {old: rids[label] for label, old in group.produced.items() if label in rids}


def sync(
    source: HasPorts,
    target: HasPorts,
    *,
    progress: Callable[[int, int], None] | bool | None = None,
) -> SyncReport:
    """Replay everything ``source`` (an embedded catalog) recorded since the last sync into ``target``.

    Safe to interrupt at any point and run again (see the module docstring); a run with nothing new sends
    no write and decodes no journal entry.

    ``progress``: ``None`` (default) shows a bar of journal entries (rate, ETA) on a terminal, not in a pipe
    or under CI, and obeys ``DERIVA_ML_PROGRESS`` (``docs/progress.md``); ``True``/``False`` force it on/off;
    a callable is called as ``progress(entries_done, entries_total)`` instead.
    """
    if not isinstance(source.ports.catalog, Journaled):
        raise ValidationError(f"sync needs an embedded source catalog (DerivaML('local', ...)), got {source!r}")
    log = get_logger(
        "deriva_ml.sync",
        source=source.ports.host.catalog_id,
        target=f"{target.ports.host.host_name}/{target.ports.host.catalog_id}",
    )
    state = _State(_state_path(source, target))
    bar = None if callable(progress) else open_bar("sync", None, "entries", progress)
    try:
        return _sync(source, target, state, progress if callable(progress) else bar, log)
    finally:
        if bar is not None:
            bar.close()
        state.close()


def _sync(
    source: HasPorts,
    target: HasPorts,
    state: _State,
    progress: Callable[[int, int], None] | None,
    log: Any,
) -> SyncReport:
    last_seq, rid_map, inflight = state.load()
    url_map = state.load_urls()
    start = last_seq
    journal = source.ports.catalog
    assert isinstance(journal, Journaled)  # checked by sync() before anything else
    entries: list[JournalEntry] = list(read_journal(journal, after=last_seq))
    model = source.ports.catalog.model()
    counts = [0, 0]
    batches = 0
    recovered = False
    tcat = target.ports.catalog
    done = 0
    with tempfile.TemporaryDirectory(prefix="deriva-ml-sync-") as tmpdir:
        tmp = Path(tmpdir)
        builder = _Builder(rid_map)

        def flush(snapshot: str) -> None:
            nonlocal batches, last_seq, done, recovered
            group = builder.take()
            batch = _copy_objects(source, target, group.batch, tmp, model, counts, url_map, state)
            batch = _status_as_cas(batch, tcat) if group.status_update else batch
            is_redo = inflight is not None and group.first == inflight[0]
            if is_redo:
                assert inflight is not None
                if group.last != inflight[1]:
                    raise ValidationError(
                        f"sync state: the group in flight was entries {inflight[0]}..{inflight[1]}, the journal "
                        f"now gives {group.first}..{group.last}; the journal changed under an interrupted sync"
                    )
                log.info("redoing interrupted group", first=group.first, last=group.last)
                rids = _redo(tcat, batch, snapshot)
                recovered = True
            else:
                state.mark_inflight(group.first, group.last, snapshot)
                _step("inflight")
                rids = dict(tcat.apply(batch).rids) if batch.effects else {}
            _step("write")
            new = _new_map(group, rids)
            rid_map.update(new)
            state.commit(group.last, new)
            _step("saved")
            batches += 1
            last_seq = group.last
            done += group.last - group.first + 1
            if progress is not None:
                progress(done, len(entries))

        snapshot = ""
        for entry in entries:
            if builder.must_flush_before(entry):
                flush(snapshot)
            if entry.tables:
                tmodel = tcat.model(refresh=True)
                missing = [t for t in entry.tables if tmodel.table(t.schema, t.name) is None]
                if missing:
                    tcat.create_tables(missing)
                _step("ddl")
                if entry.batch.effects:  # (never written by the adapters: DDL entries carry no batch)
                    raise ValidationError(f"journal entry {entry.seq} both creates tables and writes rows")
                state.commit(entry.seq, {})
                last_seq = entry.seq
                done += 1
                if progress is not None:
                    progress(done, len(entries))
                continue
            if not builder:
                # the group's marker: the snapshot just before its write (the one a redo compares with);
                # a group in flight reuses the one recorded, so a redone version row gets the same value
                redo = inflight is not None and entry.seq == inflight[0]
                snapshot = inflight[2] if inflight is not None and redo else tcat.snapshot()
            builder.add(entry, snapshot)
            if (inflight is not None and entry.seq == inflight[1]) or builder.solo:
                flush(snapshot)  # the group in flight is rebuilt exactly as it was first built
        if builder:
            flush(snapshot)
    log.info("sync done", entries=len(entries), objects=counts[0], bytes=counts[1], batches=batches)
    return SyncReport(
        entries_applied=last_seq - start if entries else 0,
        objects_copied=counts[0],
        bytes_copied=counts[1],
        rid_map=rid_map,
        last_seq=last_seq,
        entries_read=len(entries),
        batches_applied=batches,
        recovered=recovered,
        url_map=url_map,
    )
