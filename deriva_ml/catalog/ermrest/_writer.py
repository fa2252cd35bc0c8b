"""The batch writer of the ERMrest adapter: each effect of a batch as requests (insert: ``POST /entity``
per column set and ``batch_size`` rows; update and status compare-and-set: ``PUT /attributegroup``;
delete: ``DELETE /entity`` with URL-budgeted filters). Each request is atomic on the server, the batch
as a whole is not."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

from deriva_ml.catalog._common import check_writable
from deriva_ml.catalog._effects import delete_values, dispatch, no_row_with_key, update_groups
from deriva_ml.catalog.ermrest._urls import budgeted, filters, literal, u
from deriva_ml.core.effects import (
    STATUS_COLUMN,
    Batch,
    BatchResult,
    Delete,
    Insert,
    SetStatus,
    Update,
    check_status_guard,
    resolve_refs,
)
from deriva_ml.core.errors import ConflictError, NotFound, RIDNotFound, StatusConflict
from deriva_ml.core.rid import RID
from deriva_ml.core.schema_defs import SYSTEM_COLUMNS, TableDef

if TYPE_CHECKING:
    from deriva_ml.catalog.ermrest._adapter import ErmrestCatalog

#: The input column name that carries the expected status of a compare-and-set (renamed to ``Status``).
_EXPECTED = "dml_expected"


def entity_path(t: TableDef) -> str:
    """``/entity/S:T``."""
    return f"/entity/{u(t.schema)}:{u(t.name)}"


def apply(cat: ErmrestCatalog, batch: Batch) -> BatchResult:
    """The effects of ``batch`` in order, each as requests; the status guard is checked before any."""
    rids: dict[str, RID] = {}
    inserted: list[tuple[dict[str, Any], ...]] = []
    for effect in batch.effects:
        check_status_guard(effect)  # a plain write of Execution.Status is refused before any request
    for effect in batch.effects:
        rows = dispatch(
            effect,
            cat._table(effect.schema, effect.table),
            set_status=lambda t, e: _set_status(cat, t, e),
            insert=lambda t, e: _insert(cat, t, e, rids),
            update=lambda t, e: _update(cat, t, e, rids),
            delete=lambda t, e: _delete(cat, t, e, rids),
        )
        inserted.append(rows)
    return BatchResult(rids=rids, inserted=tuple(inserted))


def _insert(cat: ErmrestCatalog, t: TableDef, effect: Insert, rids: dict[str, RID]) -> tuple[dict[str, Any], ...]:
    rows = [resolve_refs(r, rids) for r in effect.rows]
    for r in rows:
        check_writable(t, r.keys(), "insert")
    # ERMrest refuses (400) a request whose rows share a key, even with onconflict=skip; a later row
    # that repeats an earlier row's key would be skipped anyway, so it is not sent (``dup_of``).
    dup_of = duplicates(t, rows) if effect.on_conflict_skip else {}
    # rows grouped by their column set: absent columns get the server's defaults (an absent column
    # NOT listed in ?defaults= would be stored as NULL, not as its default)
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, r in enumerate(rows):
        if i not in dup_of:
            groups.setdefault(tuple(sorted(r)), []).append(i)
    out: list[dict[str, Any] | None] = [None] * len(rows)
    for cols, idxs in groups.items():
        explicit_null = None
        if not cols:
            # "Entity insertion requires at least one non-defaulting column" (409): send one
            # nullable column without a default as an explicit null (the same value a default gives)
            explicit_null = next((c.name for c in t.columns if c.nullok and c.default is None), None)
            cols = (explicit_null,) if explicit_null is not None else cols
        defaults = [*SYSTEM_COLUMNS, *(c.name for c in t.columns if c.name not in cols)]
        query = "?defaults=" + ",".join(u(c) for c in defaults)
        if effect.on_conflict_skip:
            query += "&onconflict=skip"
        for start in range(0, len(idxs), cat.batch_size):
            chunk = idxs[start : start + cat.batch_size]
            body = [{c: rows[i].get(c) for c in cols} for i in chunk]
            got = (
                cat._request(
                    "POST", entity_path(t) + query, body=body, what=f"insert into {t.qualified}", table=t.qualified
                )
                or []
            )
            if not effect.on_conflict_skip:
                for i, row in zip(chunk, got, strict=True):
                    out[i] = row
            else:
                match_skipped(t, [rows[i] for i in chunk], chunk, got, out)
    if effect.labels:
        skipped: dict[str, Mapping[str, Any]] = {}
        for i, label in enumerate(effect.labels):
            if label is None:
                continue
            row = out[dup_of.get(i, i)]
            if row is not None:
                rids[label] = RID(row["RID"])
            elif effect.on_conflict_skip:
                skipped[label] = rows[i]
        rids.update(_existing(cat, t, skipped))
    return tuple(r for i, r in enumerate(out) if r is not None and i not in dup_of)


def _existing(cat: ErmrestCatalog, t: TableDef, rows: Mapping[str, Mapping[str, Any]]) -> dict[str, RID]:
    """``{label: RID}`` of the stored row each labelled row the server skipped collided with. Key by key of
    ``t`` (in order), the rows not yet resolved that have all of the key's columns are looked up together:
    one query per key (split by the adapter only when its URL exceeds the budget), matched on the client
    by the values as the URL filter spells them. A row left unmatched (the server spells a value otherwise,
    or the colliding row is gone) is looked up on its own, by the server's comparison."""
    found: dict[str, RID] = {}
    left = dict(rows)
    for k in t.keys:
        cols = tuple(k.columns)
        want = {label: row for label, row in left.items() if all(row.get(c) is not None for c in cols)}
        if not want:
            continue
        where = {c: list({literal(r[c]): r[c] for r in want.values()}.values()) for c in cols}
        hits = cat.query(t.schema, t.name, where, columns=list(dict.fromkeys(["RID", *cols])))
        stored = {tuple(literal(h[c]) for c in cols): RID(h["RID"]) for h in hits}
        for label, row in want.items():
            rid = stored.get(tuple(literal(row[c]) for c in cols))
            if rid is not None:
                found[label] = rid
                del left[label]
        if not left:
            break
    for label, row in left.items():  # a value the server spells otherwise (a normalized timestamp...)
        rid = _existing_one(cat, t, row)
        if rid is not None:
            found[label] = rid
    return found


def _existing_one(cat: ErmrestCatalog, t: TableDef, row: Mapping[str, Any]) -> RID | None:
    """The stored row ``row`` collides with, by the server's comparison (a query per key with all columns)."""
    for k in t.keys:
        if all(row.get(c) is not None for c in k.columns):
            hits = cat.query(t.schema, t.name, {c: row[c] for c in k.columns}, columns=["RID"], limit=1)
            if hits:
                return RID(hits[0]["RID"])
    return None


def _update(cat: ErmrestCatalog, t: TableDef, effect: Update, rids: dict[str, RID]) -> None:
    for cols, rows in update_groups(t, effect, rids).items():
        check_writable(t, cols, "update")
        path = (
            f"/attributegroup/{u(t.schema)}:{u(t.name)}/"
            f"{','.join(u(k) for k in effect.key)};{','.join(u(c) for c in cols)}"
        )
        for start in range(0, len(rows), cat.batch_size):
            chunk = rows[start : start + cat.batch_size]
            try:
                got = cat._request("PUT", path, body=chunk, what=f"update of {t.qualified}", table=t.qualified) or []
            except ConflictError as e:
                # documented: a row whose key matches no stored row "will cause an error" (409
                # "Input row key (...) does not match existing entity."); nothing was updated
                if "does not match existing" not in str(e):
                    raise
                _check_updated(cat, t, effect.key, chunk)
                raise
            if len(got) < len(chunk):
                # the real server skips unmatched rows (200, fewer rows; docs/server-contract.md): check them
                _check_updated(cat, t, effect.key, chunk)


def _set_status(cat: ErmrestCatalog, t: TableDef, effect: SetStatus) -> tuple[dict[str, Any], ...]:
    """Compare-and-set on the server, one request per ``batch_size`` writes of one column set.

    ``PUT /attributegroup/S:Execution/RID,dml_expected:=Status;Status,Status_Detail[,Duration]``
    (data/rest.md "Attribute Group Update with Renaming"): a row is updated only where both RID and the
    stored Status equal the input's ``RID`` and ``dml_expected``; the server does the match and the update
    in one transaction, so a concurrent change cannot slip between them. Rows whose status changed are
    not updated and are absent from the response: they lost the race.
    """
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for w in effect.writes:
        values = w.values()
        groups.setdefault(tuple(values), []).append({"RID": w.rid, _EXPECTED: w.expected.value, **values})
    written: list[dict[str, Any]] = []
    for cols, rows in groups.items():
        check_writable(t, cols, "status change")
        path = f"/attributegroup/{u(t.schema)}:{u(t.name)}/RID,{_EXPECTED}:={u(STATUS_COLUMN)};" + ",".join(
            u(c) for c in cols
        )
        for start in range(0, len(rows), cat.batch_size):
            chunk = rows[start : start + cat.batch_size]
            try:
                got = cat._request("PUT", path, body=chunk, what="status change", table=t.qualified) or []
            except ConflictError as e:  # a server that answers 409 for unmatched keys: none was written
                if "does not match existing" not in str(e):
                    raise
                got = []
            done = {r["RID"] for r in got}
            written.extend({c: r[c] for c in ("RID", *cols)} for r in chunk if r["RID"] in done)
            lost = [r for r in chunk if r["RID"] not in done]
            if lost and not effect.skip_lost:
                held = {
                    r["RID"]: r.get(STATUS_COLUMN)
                    for r in cat.query(
                        t.schema, t.name, {"RID": [r["RID"] for r in lost]}, columns=["RID", STATUS_COLUMN]
                    )
                }
                first = lost[0]
                if first["RID"] not in held:
                    raise RIDNotFound(first["RID"], t.qualified)
                raise StatusConflict(first["RID"], first[_EXPECTED], first[STATUS_COLUMN], held[first["RID"]])
    return tuple(written)


def _check_updated(cat: ErmrestCatalog, t: TableDef, key: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    # raise for the first row whose key matches no stored row
    for row in rows:
        if not cat.query(t.schema, t.name, {k: row[k] for k in key}, columns=list(key), limit=1):
            raise no_row_with_key(t, key, row)


def _delete(cat: ErmrestCatalog, t: TableDef, effect: Delete, rids: dict[str, RID]) -> None:
    values, where = delete_values(t, effect, rids)
    if not values:
        return
    items = [(effect.column, values, True), *((c, v, False) for c, v in where.items())]
    base = entity_path(t)

    def render(it: list[tuple[str, Any, bool]]) -> str:
        return base + "".join(f"/{f}" for f in filters(it) or ())

    for part in budgeted(items, render, prefix_len=len(cat._prefix(None)), budget=cat.url_budget):
        try:
            cat._request("DELETE", render(part), what=f"delete from {t.qualified}", table=t.qualified)
        except NotFound:
            continue  # nothing matched


def duplicates(t: TableDef, rows: list[dict[str, Any]]) -> dict[int, int]:
    """``{i: j}`` for each row ``i`` whose values on some key (all non-null) equal those of an earlier row ``j``."""
    seen: dict[tuple[Any, ...], int] = {}
    dup: dict[int, int] = {}
    for i, row in enumerate(rows):
        for k in t.keys:
            if all(row.get(c) is not None for c in k.columns):
                sig = (k.columns, *(repr(row[c]) for c in k.columns))
                if sig in seen:
                    dup[i] = seen[sig]
                    break
        if i not in dup:
            for k in t.keys:
                if all(row.get(c) is not None for c in k.columns):
                    seen.setdefault((k.columns, *(repr(row[c]) for c in k.columns)), i)
    return dup


def _hashable(value: Any) -> Hashable:
    """``value`` as a dict key that is equal where the values are equal (lists and dicts by content)."""
    if isinstance(value, list | tuple):
        return ("[]", *(_hashable(v) for v in value))
    if isinstance(value, dict):
        return ("{}", *sorted((str(k), _hashable(v)) for k, v in value.items()))
    try:
        hash(value)
    except TypeError:
        return ("repr", repr(value))
    return value  # type: ignore[no-any-return]


def match_skipped(
    t: TableDef,
    sent: list[dict[str, Any]],
    idxs: list[int],
    got: list[dict[str, Any]],
    out: list[dict[str, Any] | None],
) -> None:
    """Which returned row of an ``onconflict=skip`` insert is which sent row: ``out[idxs[n]]`` is set to
    the first not yet matched row of ``got`` that equals ``sent[n]`` on one of ``t``'s keys (whose columns
    the sent row has), or on all sent columns when ``t`` has no key; sent rows the server skipped match
    none. Linear: the returned rows are indexed once per key (a queue of positions per key value)."""
    column_sets = [tuple(k.columns) for k in t.keys]
    used = [False] * len(got)
    index: dict[tuple[str, ...], dict[Hashable, deque[int]]] = {}

    def positions(cols: tuple[str, ...], row: Mapping[str, Any]) -> deque[int] | None:
        by_value = index.get(cols)
        if by_value is None:
            by_value = defaultdict(deque)
            for j, r in enumerate(got):
                by_value[tuple(_hashable(r.get(c)) for c in cols)].append(j)
            index[cols] = by_value
        return by_value.get(tuple(_hashable(row[c]) for c in cols))

    for i, row in zip(idxs, sent, strict=True):
        candidates = [k for k in column_sets if all(c in row for c in k)] if column_sets else [tuple(row)]
        best: int | None = None
        for cols in candidates:
            queue = positions(cols, row)
            while queue and used[queue[0]]:
                queue.popleft()
            if queue and (best is None or queue[0] < best):
                best = queue[0]
        if best is not None:
            used[best] = True
            out[i] = got[best]
