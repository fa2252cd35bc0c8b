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

``DERIVA_ML_SYNC_KILL_AT=<step>:<n>`` (tests only) kills the process at a step (:mod:`deriva_ml.sync._faults`).

This package's :func:`sync` drives a run; each part has one job: ``_plan`` (journal entries -> groups, pure),
``_state`` (the progress file), ``_objects`` (object transfer), ``_apply`` (writing a group: status
compare-and-set, the redo of a group in flight).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from deriva_ml._log import get_logger
from deriva_ml._progress import open_bar
from deriva_ml.catalog.journal import JournalEntry, read_journal
from deriva_ml.catalog.port import Journaled
from deriva_ml.core.errors import ValidationError
from deriva_ml.core.rid import RID
from deriva_ml.sync._apply import _redo, _status_as_cas
from deriva_ml.sync._faults import _step
from deriva_ml.sync._objects import _copy_objects
from deriva_ml.sync._plan import _Builder, _Group
from deriva_ml.sync._state import _State, _state_path

if TYPE_CHECKING:
    from deriva_ml.context import Ports


class HasPorts(Protocol):
    """A handle on a catalog (a ``DerivaML``): sync reads and writes through its ports only."""

    @property
    def ports(self) -> Ports: ...


__all__ = ["GROUP_ENTRIES", "GROUP_ROWS", "HasPorts", "SyncReport", "sync"]

#: A group is flushed when it holds this many rows (bounds memory, request size and redo work).
GROUP_ROWS = 5000
#: ... or this many journal entries.
GROUP_ENTRIES = 2000


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
        builder = _Builder(rid_map, max_rows=GROUP_ROWS, max_entries=GROUP_ENTRIES)

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
