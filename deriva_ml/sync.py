"""Offline replay: sync what was recorded on an embedded catalog into another catalog (e.g. a live server).

The embedded catalog journals every write in the same SQLite transaction that makes it, so the journal
never misses a commit. ``sync(source, target)`` replays the entries the target has not seen yet:

1. tables created offline (domain tables, asset tables) are created in the target when missing;
2. asset files referenced by rows inserted into asset tables are copied from the source object store to
   the target's, under the same content-addressed URL (``/hatrac/<Table>/<md5>.<filename>``), so URL,
   MD5, length and file name — the provenance of each file — are identical;
3. each batch is applied to the target with RIDs produced earlier rewritten to the target's RIDs
   (``Dataset_Version.Snapshot`` values are re-taken from the target, since the local ones mean nothing
   there);
4. progress (last entry, RID map) is saved after every entry in ``sync-<target>.json`` beside the source
   catalog, so an interrupted sync resumes where it stopped and a repeated sync sends nothing new.

Workflows, executions, status history, inputs and outputs therefore arrive with the same structure and
values; only RIDs differ, and the returned map translates them.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from deriva_ml._log import get_logger
from deriva_ml._util import safe_name
from deriva_ml.catalog.journal import JournalEntry, read_journal, replay_entry
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.effects import Batch, Insert, Update
from deriva_ml.core.errors import ValidationError
from deriva_ml.core.rid import RID

if TYPE_CHECKING:
    from deriva_ml._ml import DerivaML


@attrs.frozen
class SyncReport:
    """What one sync did."""

    entries_applied: int
    objects_copied: int
    bytes_copied: int
    rid_map: dict[str, str]
    last_seq: int

    def target_rid(self, source_rid: str) -> str:
        """The target's RID of a row synced from the source."""
        return self.rid_map.get(source_rid, source_rid)


def _state_path(source: DerivaML, target: DerivaML) -> Path:
    key = safe_name(f"{target.host_name}_{target.catalog_id}")
    return Path(source.catalog.path).parent / f"sync-{key}.json"  # type: ignore[attr-defined]


def _load_state(path: Path) -> tuple[int, dict[str, RID]]:
    if not path.exists():
        return 0, {}
    doc = json.loads(path.read_text())
    return int(doc["last_seq"]), {k: RID(v) for k, v in doc["rid_map"].items()}


def _save_state(path: Path, last_seq: int, rid_map: dict[str, RID]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".sync-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump({"last_seq": last_seq, "rid_map": rid_map}, f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _with_target_snapshots(batch: Batch, target: DerivaML) -> Batch:
    effects = []
    snap: str | None = None
    for e in batch.effects:
        if (
            isinstance(e, Insert | Update)
            and (e.schema, e.table) == (ML_SCHEMA, "Dataset_Version")
            and any("Snapshot" in r for r in e.rows)
        ):
            snap = snap or target.catalog.snapshot()
            rows = [{**r, "Snapshot": snap} if "Snapshot" in r else dict(r) for r in e.rows]
            e = attrs.evolve(e, rows=rows)
        effects.append(e)
    return Batch(effects)


def sync(
    source: DerivaML,
    target: DerivaML,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> SyncReport:
    """Replay everything ``source`` (an embedded catalog) recorded since the last sync into ``target``."""
    from deriva_ml.catalog.schema import is_asset

    if not hasattr(source.catalog, "journal_lines"):
        raise ValidationError(f"sync needs an embedded source catalog (DerivaML('local', ...)), got {source!r}")
    log = get_logger("deriva_ml.sync", source=source.catalog_id, target=f"{target.host_name}/{target.catalog_id}")
    state = _state_path(source, target)
    last_seq, rid_map = _load_state(state)
    entries: list[JournalEntry] = [e for e in read_journal(source.catalog) if e.seq > last_seq]
    model = source.catalog.model()
    copied = 0
    nbytes = 0
    with tempfile.TemporaryDirectory(prefix="deriva-ml-sync-") as tmp:
        for n, entry in enumerate(entries, 1):
            for effect in entry.batch.effects:
                if not isinstance(effect, Insert):
                    continue
                table = model.table(effect.schema, effect.table)
                if table is None or not is_asset(table):
                    continue
                for row in effect.rows:
                    url, md5, name = row.get("URL"), row.get("MD5"), row.get("Filename")
                    if not url or not md5:
                        continue
                    if target.store.stat(url) is not None:
                        continue
                    local = source.store.get(url, Path(tmp) / f"{md5}.bin", md5=md5)
                    stored = target.store.put(local, table=effect.table, filename=name or Path(url).name, md5=md5)
                    if stored.url != url:
                        raise ValidationError(
                            f"target store gives {stored.url} for {url}: provenance would change; both stores "
                            f"must use the /hatrac/<Table>/<md5>.<filename> shape"
                        )
                    copied += 1
                    nbytes += stored.length
                    local.unlink(missing_ok=True)
            entry = attrs.evolve(entry, batch=_with_target_snapshots(entry.batch, target))
            replay_entry(entry, target.catalog, rid_map)
            _save_state(state, entry.seq, rid_map)
            last_seq = entry.seq
            if progress is not None:
                progress(n, len(entries))
    log.info("sync done", entries=len(entries), objects=copied, bytes=nbytes)
    return SyncReport(
        entries_applied=len(entries),
        objects_copied=copied,
        bytes_copied=nbytes,
        rid_map=dict(rid_map),
        last_seq=last_seq,
    )
