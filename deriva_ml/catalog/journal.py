"""The journal of an embedded catalog (entries encoded and read back), and replay into another catalog.

Journal format: JSON lines, one per successfully applied batch, ``{"batch", "result", "seq"}`` with sorted
keys (see ``docs/catalog.md``). ``seq`` counts from 1 within the file. Each line is flushed and fsync'd
before ``apply`` returns.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from deriva_ml.catalog._codec import dump_tables, load_table
from deriva_ml.catalog.port import Catalog, Journaled
from deriva_ml.core.codec import effect_from_json, effect_to_json, parse_json
from deriva_ml.core.convert import converter, json_text
from deriva_ml.core.effects import (
    STATUS_COLUMN,
    STATUS_SCHEMA,
    STATUS_TABLE,
    Batch,
    BatchResult,
    Delete,
    Effect,
    Insert,
    SetStatus,
    StatusWrite,
    Update,
)
from deriva_ml.core.errors import ConfigurationError
from deriva_ml.core.rid import RID
from deriva_ml.core.schema_defs import SYSTEM_COLUMNS, TableDef

__all__ = ["JournalEntry", "read_journal", "replay"]


@attrs.frozen
class JournalEntry:
    """One journal line: the batch as applied and what it produced."""

    seq: int
    batch: Batch
    result: BatchResult
    #: Tables created by this entry (a DDL entry has these and an empty batch).
    tables: tuple[TableDef, ...] = ()


def _compact_result(entry: JournalEntry) -> dict[str, Any]:
    """The result as the journal keeps it: rows of a plain insert are identified by position, so only their
    RIDs are stored (``{"rids": [...]}``); rows of an ``on_conflict_skip`` insert, where the source may have
    skipped some, are kept whole so replay can match them by content."""
    inserted: list[Any] = []
    for effect, rows in zip(entry.batch.effects, entry.result.inserted, strict=False):
        if isinstance(effect, Insert) and not effect.on_conflict_skip and len(rows) == len(effect.rows):
            inserted.append({"rids": [r["RID"] for r in rows]})
        else:
            inserted.append([dict(r) for r in rows])
    return {"rids": dict(entry.result.rids), "inserted": inserted}


def _expand_result(doc: Mapping[str, Any]) -> BatchResult:
    inserted = [
        tuple({"RID": rid} for rid in rows["rids"]) if isinstance(rows, Mapping) else tuple(rows)
        for rows in doc.get("inserted", ())
    ]
    return BatchResult(rids=doc.get("rids", {}), inserted=inserted)


def encode_entry(entry: JournalEntry) -> str:
    doc = {
        "seq": entry.seq,
        "batch": converter().unstructure(entry.batch, Batch),
        "result": _compact_result(entry),
    }
    if entry.tables:
        doc["tables"] = dump_tables(entry.tables)
    # key order is fixed by construction (records, and rows as the batch gave them): no sort needed
    return json_text(doc, compact=True, default=None)


def decode_entry(line: str, where: str = "journal") -> JournalEntry:
    try:
        doc = parse_json(line, where)
        return JournalEntry(
            seq=int(doc["seq"]),
            batch=converter().structure(doc["batch"], Batch),
            result=_expand_result(doc["result"]),
            tables=tuple(load_table(t) for t in doc.get("tables", ())),
        )
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        raise ConfigurationError(f"{where}: malformed journal line {line[:200]!r}: {e}") from e


def read_journal(path: Path | Journaled, after: int = 0) -> Iterator[JournalEntry]:
    """The entries of a journal with ``seq > after``, in order: a JSON-lines file (a torn last line is
    ignored) or an embedded catalog that journals in its own transactions (``SQLiteCatalog`` with
    ``journal=True``).

    On an embedded catalog only the entries after ``after`` are read and decoded (an indexed range of the
    ``_dml_journal`` table), so an incremental reader pays for the new entries only. A JSON-lines file has
    no index: its earlier lines are skipped by their ``seq`` without being decoded.
    """
    if isinstance(path, Journaled):
        for line in path.journal_lines(after):
            yield decode_entry(line, f"{path}")
        return
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if i == len(lines) and not line.endswith("\n"):
            return  # a write interrupted by a crash: that batch's apply never returned
        if after and _line_seq(line, f"{path}:{i}") <= after:
            continue
        yield decode_entry(line, f"{path}:{i}")


def _line_seq(line: str, where: str = "journal line") -> int:
    # entries are written with "seq" as the first key: read it without decoding the batch
    head = line[: line.find(",")] if line.startswith('{"seq":') else ""
    try:
        return int(head[len('{"seq":') :])
    except ValueError:
        try:
            return int(parse_json(line, where)["seq"])
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigurationError(f"{where}: malformed journal line {line[:200]!r}: {e}") from e


def _map(value: Any, rid_map: Mapping[str, RID]) -> Any:
    if isinstance(value, str):
        return rid_map.get(value, value)
    return value


def _map_row(row: Mapping[str, Any], rid_map: Mapping[str, RID]) -> dict[str, Any]:
    return {k: _map(v, rid_map) for k, v in row.items()}


def rewrite_batch(batch: Batch, rid_map: Mapping[str, RID]) -> Batch:
    """``batch`` with every string value that is a RID produced earlier in the journal mapped to its new RID.

    Refs are left alone (the target resolves them to its own RIDs).
    """
    effects: list[Effect] = []
    for e in batch.effects:
        if isinstance(e, SetStatus):
            effects.append(
                SetStatus([attrs.evolve(w, rid=_map(w.rid, rid_map)) for w in e.writes], skip_lost=e.skip_lost)
            )
        elif isinstance(e, Insert):
            rows = [_map_row(r, rid_map) for r in e.rows]
            effects.append(attrs.evolve(e, rows=rows))
        elif isinstance(e, Update):
            effects.append(attrs.evolve(e, rows=[_map_row(r, rid_map) for r in e.rows]))
        elif isinstance(e, Delete):
            effects.append(
                Delete(
                    e.schema, e.table, e.column, tuple(_map(v, rid_map) for v in e.values), _map_row(e.where, rid_map)
                )
            )
        else:
            effects.append(rewrite_effect_json(e, rid_map))
    return Batch(tuple(effects))


#: Top-level keys of an effect's JSON form that name things (never RID values): left alone by the rewrite.
_NAME_KEYS = frozenset({"kind", "schema", "table", "column", "key", "labels"})


def _map_values(doc: Any, fn: Any) -> Any:
    if isinstance(doc, str):
        return fn(doc)
    if isinstance(doc, list):
        return [_map_values(v, fn) for v in doc]
    if isinstance(doc, dict):
        if set(doc) == {"$ref"}:
            return doc  # a Ref names a label, not a RID
        return {k: _map_values(v, fn) for k, v in doc.items()}
    return doc


def map_json(doc: Mapping[str, Any], fn: Any) -> dict[str, Any]:
    """An effect's JSON form with ``fn`` applied to every string value (rows, values, writes, ...) except
    under the top-level naming keys and inside ``{"$ref": label}``."""
    return {k: v if k in _NAME_KEYS else _map_values(v, fn) for k, v in doc.items()}


def rewrite_effect_json(effect: Effect, rid_map: Mapping[str, RID]) -> Effect:
    """Any effect kind the codec knows, with RIDs produced earlier rewritten: through its JSON form, so a
    new effect type (e.g. a compare-and-set of a status) replays without code here."""
    return effect_from_json(map_json(effect_to_json(effect), lambda v: rid_map.get(v, v)))


def _content(row: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in row.items() if k not in SYSTEM_COLUMNS}, sort_keys=True, default=str)


def replay(journal_path: Path | Journaled, target: Catalog) -> dict[RID, RID]:
    """Apply every batch of the journal to ``target``; return old RID → new RID for the rows it inserted.

    Values referring to rows inserted earlier in the journal (Refs inside a batch, literal RID strings
    across batches) are rewritten to the target's RIDs. RIDs of rows the journal did not insert (rows that
    existed before journalling started) are passed through unchanged.
    """
    rid_map: dict[str, RID] = {}
    for entry in read_journal(journal_path):
        replay_entry(entry, target, rid_map)
    return {RID(k): v for k, v in rid_map.items()}


def replay_entry(entry: JournalEntry, target: Catalog, rid_map: dict[str, RID]) -> BatchResult:
    """Apply one journal entry to ``target``, extending ``rid_map`` (old RID -> new RID) in place.

    A DDL entry creates the tables the target does not have yet (same schema and name).
    """
    if entry.tables:
        model = target.model(refresh=True)
        missing = [t for t in entry.tables if model.table(t.schema, t.name) is None]
        if missing:
            target.create_tables(missing)
    if not entry.batch.effects:
        return BatchResult()
    batch = rewrite_batch(entry.batch, rid_map)
    if any(_legacy_status_update(e) for e in batch.effects):
        batch = _upgrade_legacy_status(batch, target)
    new_result = target.apply(batch)
    for label, old in entry.result.rids.items():
        if label in new_result.rids:
            rid_map[old] = new_result.rids[label]
    for old_rows, new_rows in zip(entry.result.inserted, new_result.inserted, strict=False):
        if len(old_rows) == len(new_rows):
            pairs = list(zip(old_rows, new_rows, strict=True))
        else:  # on_conflict_skip skipped different rows: match by content
            by_content = {_content(_map_row(r, rid_map)): r for r in new_rows}
            pairs = [
                (o, by_content[_content(_map_row(o, rid_map))])
                for o in old_rows
                if _content(_map_row(o, rid_map)) in by_content
            ]
        for old_row, new_row in pairs:
            if "RID" in old_row and "RID" in new_row:
                rid_map[old_row["RID"]] = RID(new_row["RID"])
    return new_result


def _legacy_status_update(effect: Effect) -> bool:
    return (
        isinstance(effect, Update)
        and (effect.schema, effect.table) == (STATUS_SCHEMA, STATUS_TABLE)
        and effect.key == ("RID",)
        and any(STATUS_COLUMN in r for r in effect.rows)
    )


def _upgrade_legacy_status(batch: Batch, target: Catalog) -> Batch:
    """A journal written before status writes were compare-and-sets holds plain ``Update``s of
    ``Execution.Status``. Each becomes a :class:`SetStatus` whose expected status is the one the target
    holds now: the edge is checked against the transition table (an illegal one raises
    ``InvalidTransition`` and nothing is applied) and the write is still conditional on the target."""
    effects: list[Effect] = []
    for e in batch.effects:
        if not _legacy_status_update(e):
            effects.append(e)
            continue
        assert isinstance(e, Update)
        rids = [r["RID"] for r in e.rows]
        held = {
            r["RID"]: r.get(STATUS_COLUMN)
            for r in target.query(STATUS_SCHEMA, STATUS_TABLE, {"RID": rids}, columns=["RID", STATUS_COLUMN])
        }
        writes = []
        rest = []
        for r in e.rows:
            if STATUS_COLUMN not in r:
                rest.append(r)
                continue
            writes.append(
                StatusWrite(
                    r["RID"],
                    held.get(r["RID"]) or "Created",
                    r[STATUS_COLUMN],
                    r.get("Status_Detail") or "",
                    r.get("Duration"),
                )
            )
            other = {k: v for k, v in r.items() if k not in (STATUS_COLUMN, "Status_Detail", "Duration")}
            if len(other) > 1:
                rest.append(other)
        if rest:
            effects.append(Update(e.schema, e.table, rest, key=e.key))
        effects.append(SetStatus(writes))
    return Batch(effects)
