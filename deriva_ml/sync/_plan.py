"""Journal entries -> target batches (*groups*): the pure planning step of :mod:`deriva_ml.sync`.

Consecutive entries merge into one group: every inserted row gets a label, a RID produced earlier in the
group becomes a ``Ref`` to that label, a RID produced by an earlier group is rewritten to the target's RID,
and consecutive inserts into (or updates of) one table become one effect. A group is closed before an entry
that creates tables, names a version snapshot, changes an execution status with a plain update, or would
make it exceed its row / entry limits. No I/O here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from deriva_ml.catalog.journal import JournalEntry, map_json
from deriva_ml.core.codec import effect_from_json, effect_to_json
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.effects import Batch, Delete, Effect, Insert, Ref, Update, resolve_refs
from deriva_ml.core.errors import DerivaMLException
from deriva_ml.core.rid import RID


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

    def __init__(self, rid_map: Mapping[str, RID], *, max_rows: int, max_entries: int) -> None:
        self.rid_map = rid_map
        self.max_rows = max_rows
        self.max_entries = max_entries
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
        if entry.tables or self.rows >= self.max_rows or self.last - self.first + 1 >= self.max_entries:
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


def _refs_to(rows: Iterable[Mapping[str, Any]], labels: set[str | None]) -> bool:
    return any(isinstance(v, Ref) and v.label in labels for r in rows for v in r.values())


def _key(row: Mapping[str, Any], key: tuple[str, ...]) -> str:
    return json.dumps([row.get(k) if not isinstance(row.get(k), Ref) else ["ref", row[k].label] for k in key])
