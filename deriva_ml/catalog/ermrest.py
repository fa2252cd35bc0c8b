"""A live ERMrest catalog through deriva-py's HTTP binding (the only module that imports ``deriva``).

Requests follow ERMrest's REST API (see ``docs/catalog.md`` for the exact URLs):

- model: ``GET /ermrest/catalog/N/schema`` once per instance (again only after DDL or ``refresh=True``);
  DDL: one atomic ``POST /ermrest/catalog/N/schema`` with a batch list of schema and table documents;
- insert: ``POST /entity/S:T?defaults=RID,RCT,RMT,RCB,RMB[,...][&onconflict=skip]``, ``batch_size`` rows per
  request; update: ``PUT /attributegroup/S:T/K;C1,C2``; delete: ``DELETE /entity/S:T/C=v1;C=v2``;
- query: ``GET /entity/S:T/filters@sort(...)?limit=N`` or ``/attribute/S:T/filters/C1,C2``; snapshot reads
  use ``/ermrest/catalog/N@SNAP/...``; ``snapshot()`` reads ``snaptime`` from ``GET /ermrest/catalog/N``;
- ``resolve_rid``: ``GET /entity_rid/RID``.

Every request that carries a list of values (``C=v1;C=v2`` filters of queries, linked queries and deletes)
is split so that its request target (path and query, percent-encoded, ``/ermrest/catalog/N[@SNAP]``
included) stays within ``url_budget`` bytes (default :data:`URL_BUDGET`); the parts are merged, sorted
and limited again on the client. Callers pass lists of any length.

A batch is applied request by request: each request is atomic on the server, the batch as a whole is not.
``request_count`` counts HTTP requests made (``requests`` by method) for tests and benchmarks.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import attrs

from deriva_ml.catalog._common import check_columns, check_writable, find_table, where_items
from deriva_ml.catalog.port import ML_SCHEMA, Where
from deriva_ml.catalog.schema import ML_TABLES, seed_batch, table_kind
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
from deriva_ml.core.errors import (
    CatalogBusy,
    CatalogError,
    CatalogUnreachable,
    ConflictError,
    ForeignKeyError,
    InvalidRID,
    NotFound,
    PermissionDenied,
    RIDNotFound,
    StatusConflict,
    UnknownColumn,
    UnknownTable,
    ValidationError,
)
from deriva_ml.core.filters import PathQuery
from deriva_ml.core.retry import backoff_delays
from deriva_ml.core.rid import RID, is_rid
from deriva_ml.core.schema_defs import (
    COLUMN_TYPES,
    SYSTEM_COLUMNS,
    CatalogModel,
    ColumnDef,
    ForeignKeyDef,
    KeyDef,
    TableDef,
)

__all__ = [
    "DEFAULT_SESSION_CONFIG",
    "URL_BUDGET",
    "ErmrestCatalog",
    "create_ml_catalog",
    "model_from_document",
    "table_document",
    "table_from_document",
]

#: Retries of a request ERMrest rolled back (503 "Transaction aborted." on a serialization failure or
#: deadlock between concurrent writers, "Resources unavailable."): safe for any method, POST included,
#: because nothing was committed. Many jobs of a sweep writing to one catalog meet these routinely;
#: deriva-py's session retries 503 for idempotent methods only.
ROLLED_BACK_RETRIES = 8
ROLLED_BACK_DELAY = 0.1
_ROLLED_BACK_TEXTS = ("transaction aborted", "resources unavailable")

#: Overrides of deriva-py's session config: a few quick retries instead of ~8 minutes of back-off.
DEFAULT_SESSION_CONFIG: Mapping[str, Any] = {
    "retry_connect": 2,
    "retry_read": 2,
    "retry_backoff_factor": 0.2,
    "retry_status_forcelist": [502, 503, 504],
    "cookie_jar": None,
}

_SYSTEM_TYPES = {
    "RID": "ermrest_rid",
    "RCT": "ermrest_rct",
    "RMT": "ermrest_rmt",
    "RCB": "ermrest_rcb",
    "RMB": "ermrest_rmb",
}
#: Longest request target (path + query string, percent-encoded, bytes) sent to ERMrest. Behind a stock
#: Apache + mod_wsgi, a request path over ~4,050 bytes is answered 404 with an HTML page (mod_wsgi cannot
#: stat the decoded path: PATH_MAX) and a request line over 8,190 bytes 414 (measured: docs/server-contract.md).
URL_BUDGET = 3000
#: The input column name that carries the expected status of a compare-and-set (renamed to ``Status``).
_EXPECTED = "dml_expected"


def _u(name: object) -> str:
    """ERMrest names and literals in URLs: percent-encode everything but unreserved characters."""
    return quote(str(name), safe="")


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _u(value)


# ---------------------------------------------------------------------------------------------- model documents


def _type_doc(typename: str) -> dict[str, Any]:
    if typename.endswith("[]"):
        return {"typename": typename, "is_array": True, "base_type": {"typename": typename[:-2]}}
    return {"typename": typename}


def table_document(t: TableDef) -> dict[str, Any]:
    """The ERMrest table representation of ``t`` (system columns and the RID key included)."""
    cols: list[dict[str, Any]] = [
        {"name": n, "type": _type_doc(ty), "nullok": n in ("RCB", "RMB"), "comment": "System column"}
        for n, ty in _SYSTEM_TYPES.items()
    ]
    for c in t.columns:
        doc: dict[str, Any] = {"name": c.name, "type": _type_doc(c.type), "nullok": c.nullok, "comment": c.comment}
        if c.default is not None:
            doc["default"] = c.default
        cols.append(doc)
    keys = [{"unique_columns": ["RID"], "names": [[t.schema, f"{t.name}_RIDkey1"]]}]
    for k in t.keys:
        name = k.name or f"{t.name}_{'_'.join(k.columns)}_key"
        keys.append({"unique_columns": list(k.columns), "names": [[t.schema, name[:63]]]})
    fkeys = []
    for fk in t.foreign_keys:
        name = fk.name or f"{t.name}_{'_'.join(fk.columns)}_fkey"
        fkeys.append(
            {
                "foreign_key_columns": [
                    {"schema_name": t.schema, "table_name": t.name, "column_name": c} for c in fk.columns
                ],
                "referenced_columns": [
                    {"schema_name": fk.pk_schema, "table_name": fk.pk_table, "column_name": c} for c in fk.pk_columns
                ],
                "on_delete": fk.on_delete,
                "names": [[t.schema, name[:63]]],
            }
        )
    return {
        "schema_name": t.schema,
        "table_name": t.name,
        "comment": t.comment,
        "kind": "table",
        "annotations": {},
        "column_definitions": cols,
        "keys": keys,
        "foreign_keys": fkeys,
    }


def _column_type(doc: Mapping[str, Any]) -> str:
    typename = str(doc.get("typename", "text"))
    if typename in COLUMN_TYPES:
        return typename
    if doc.get("is_array"):
        return "text[]" if (doc.get("base_type") or {}).get("typename") in ("text", "markdown") else "jsonb"
    if typename.startswith(("serial", "int")):
        return "int8"
    if typename.startswith("float") or typename == "numeric":
        return "float8"
    if (doc.get("base_type") or {}).get("typename") in COLUMN_TYPES:  # domains such as markdown
        return str(doc["base_type"]["typename"])
    return "text"


def table_from_document(doc: Mapping[str, Any]) -> TableDef:
    """A :class:`TableDef` from an ERMrest table representation (system columns, RID key, RCB/RMB fkeys dropped)."""
    schema, name = doc["schema_name"], doc["table_name"]
    cols = tuple(
        ColumnDef(
            c["name"],
            _column_type(c.get("type") or {}),
            bool(c.get("nullok", True)),
            c.get("default") if isinstance(c.get("default"), str | int | float | bool) else None,
            c.get("comment") or "",
        )
        for c in doc.get("column_definitions", [])
        if c["name"] not in SYSTEM_COLUMNS
    )
    keys = tuple(
        KeyDef(tuple(k["unique_columns"]), (k.get("names") or [[None, None]])[0][1])
        for k in doc.get("keys", [])
        if list(k["unique_columns"]) != ["RID"]
    )
    fks = []
    for fk in doc.get("foreign_keys", []):
        fcols = tuple(c["column_name"] for c in fk["foreign_key_columns"])
        if set(fcols) <= set(SYSTEM_COLUMNS):
            continue
        ref = fk["referenced_columns"]
        fks.append(
            ForeignKeyDef(
                fcols,
                ref[0]["schema_name"],
                ref[0]["table_name"],
                tuple(c["column_name"] for c in ref),
                on_delete=fk.get("on_delete") if fk.get("on_delete") in ("CASCADE", "SET NULL") else "NO ACTION",
                name=(fk.get("names") or [[None, None]])[0][1],
            )
        )
    t = TableDef(schema=schema, name=name, columns=cols, keys=keys, foreign_keys=fks, comment=doc.get("comment") or "")
    kind = table_kind(t)
    return t if kind == "table" else TableDef(t.schema, t.name, t.columns, t.keys, t.foreign_keys, kind, t.comment)


def model_from_document(doc: Mapping[str, Any]) -> CatalogModel:
    tables = []
    for sname, sdoc in sorted((doc.get("schemas") or {}).items()):
        for tname, tdoc in sorted((sdoc.get("tables") or {}).items()):
            try:
                tables.append(table_from_document({"schema_name": sname, "table_name": tname, **tdoc}))
            except ValidationError:
                continue  # names deriva_ml cannot address (e.g. longer than 63 characters)
    return CatalogModel(tuple(tables), schema_names=tuple(sorted(doc.get("schemas") or {})))


# ---------------------------------------------------------------------------------------------- adapter


class ErmrestCatalog:
    """A catalog on an ERMrest server. ``credential=None`` looks one up with deriva-py's ``get_credential``."""

    def __init__(
        self,
        hostname: str,
        catalog_id: str | int,
        *,
        credential: Mapping[str, Any] | None = None,
        session_config: Mapping[str, Any] | None = None,
        batch_size: int = 1000,
        scheme: str = "https",
        url_budget: int = URL_BUDGET,
    ) -> None:
        from deriva.core import DEFAULT_SESSION_CONFIG as DERIVA_DEFAULTS

        if batch_size < 1:
            raise ValidationError(f"batch_size={batch_size!r} must be at least 1")
        if url_budget < 256:
            raise ValidationError(f"url_budget={url_budget!r} must be at least 256 bytes")
        self.url_budget = url_budget
        self.hostname = hostname
        self.catalog_id = str(catalog_id)
        self.scheme = scheme
        self.batch_size = batch_size
        self.session_config = {**DERIVA_DEFAULTS, **DEFAULT_SESSION_CONFIG, **(session_config or {})}
        self._credential = credential if credential is not None else _lookup_credential(hostname)
        self.request_count = 0
        self.requests: Counter[str] = Counter()
        self._model: CatalogModel | None = None
        self._schemas: set[str] = set()
        self._bindings: dict[str | None, Any] = {}
        self._binding(None)

    def __repr__(self) -> str:
        return f"ErmrestCatalog({self.hostname!r}, {self.catalog_id!r})"

    # ------------------------------------------------------------------------------------ http

    def _binding(self, snapshot: str | None) -> Any:
        b = self._bindings.get(snapshot)
        if b is None:
            from deriva.core.ermrest_catalog import ErmrestCatalog as DerivaCatalog
            from deriva.core.ermrest_catalog import ErmrestSnapshot

            if snapshot is None:
                b = DerivaCatalog(
                    self.scheme,
                    self.hostname,
                    self.catalog_id,
                    self._credential,
                    caching=False,
                    session_config=self.session_config,
                )
            else:  # /ermrest/catalog/N@SNAP/...
                b = ErmrestSnapshot(
                    self.scheme,
                    self.hostname,
                    self.catalog_id,
                    _u(snapshot),
                    self._credential,
                    caching=False,
                    session_config=self.session_config,
                )
            self._bindings[snapshot] = b
        return b

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        snapshot: str | None = None,
        what: str = "",
        table: str | None = None,
    ) -> Any:
        import requests

        b = self._binding(snapshot)
        delays = backoff_delays(
            ROLLED_BACK_RETRIES,
            ROLLED_BACK_DELAY,
            jitter=[random.uniform(-0.5, 0.5) for _ in range(ROLLED_BACK_RETRIES)],  # concurrent writers
            cap=5.0,
        )
        try:
            for attempt in range(len(delays) + 1):
                self.request_count += 1
                self.requests[method] += 1
                try:
                    if method == "GET":
                        r = b.get(path)
                    elif method == "POST":
                        r = b.post(path, json=body)
                    elif method == "PUT":
                        r = b.put(path, json=body)
                    else:
                        r = b.delete(path)
                    if r.status_code >= 400:
                        r.raise_for_status()
                    break
                except requests.HTTPError as e:  # deriva-py raises for error statuses itself
                    late = e.response
                    if late is None or late.status_code != 503 or attempt >= len(delays):
                        raise
                    if not _rolled_back(late.text):
                        raise
                    time.sleep(delays[attempt])
        except requests.HTTPError as e:
            raise _translate(e.response, what or f"{method} {path}", table) from e
        except requests.ConnectionError as e:
            # the innermost reason ("Connection refused", "Name or service not known"), not urllib3's nesting
            reason = re.findall(r"\[Errno -?\d+\] ([^'\")\]]+)", str(e))
            raise CatalogUnreachable(
                f"{what or method + ' ' + path}: cannot reach {self.hostname}: {reason[-1] if reason else e}"
            ) from e
        except requests.Timeout as e:
            raise CatalogUnreachable(f"{what or method + ' ' + path}: {self.hostname} timed out: {e}") from e
        if r.status_code == 204 or not r.content:
            return None
        return r.json()

    # ------------------------------------------------------------------------------------ model

    def model(self, *, refresh: bool = False) -> CatalogModel:
        if self._model is None or refresh:
            doc = self._request("GET", "/schema", what="model")
            self._schemas = set((doc.get("schemas") or {}).keys())
            self._model = model_from_document(doc)
        return self._model

    def _table(self, schema: str, table: str) -> TableDef:
        return find_table(self.model(), schema, table)

    def create_tables(self, tables: Sequence[TableDef], *, schemas: Sequence[str] = ()) -> None:
        """Create ``tables`` (and missing schemas, plus any named in ``schemas``) in one atomic request."""
        model = self.model()
        have = self._schemas | set(model.schemas())
        new_schemas = [s for s in dict.fromkeys([*schemas, *(t.schema for t in tables)]) if s not in have]
        for t in tables:
            if model.table(t.schema, t.name) is not None:
                raise ConflictError(f"table {t.qualified} already exists")
        body: list[dict[str, Any]] = [{"schema_name": s, "comment": "", "annotations": {}} for s in new_schemas]
        body.extend(table_document(t) for t in tables)
        if body:
            self._request("POST", "/schema", body=body, what="create tables")
        self.model(refresh=True)

    # ------------------------------------------------------------------------------------ writes

    def apply(self, batch: Batch) -> BatchResult:
        rids: dict[str, RID] = {}
        inserted: list[tuple[dict[str, Any], ...]] = []
        for effect in batch.effects:
            check_status_guard(effect)  # a plain write of Execution.Status is refused before any request
        for effect in batch.effects:
            table = self._table(effect.schema, effect.table)
            if isinstance(effect, SetStatus):
                inserted.append(self._set_status(table, effect))
            elif isinstance(effect, Insert):
                inserted.append(self._insert(table, effect, rids))
            elif isinstance(effect, Update):
                self._update(table, effect, rids)
                inserted.append(())
            else:
                self._delete(table, effect, rids)
                inserted.append(())
        return BatchResult(rids=rids, inserted=tuple(inserted))

    def _entity(self, t: TableDef) -> str:
        return f"/entity/{_u(t.schema)}:{_u(t.name)}"

    def _insert(self, t: TableDef, effect: Insert, rids: dict[str, RID]) -> tuple[dict[str, Any], ...]:
        rows = [resolve_refs(r, rids) for r in effect.rows]
        for r in rows:
            check_writable(t, r.keys(), "insert")
        # ERMrest refuses (400) a request whose rows share a key, even with onconflict=skip; a later row
        # that repeats an earlier row's key would be skipped anyway, so it is not sent (``dup_of``).
        dup_of = _duplicates(t, rows) if effect.on_conflict_skip else {}
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
            query = "?defaults=" + ",".join(_u(c) for c in defaults)
            if effect.on_conflict_skip:
                query += "&onconflict=skip"
            for start in range(0, len(idxs), self.batch_size):
                chunk = idxs[start : start + self.batch_size]
                body = [{c: rows[i].get(c) for c in cols} for i in chunk]
                got = (
                    self._request(
                        "POST", self._entity(t) + query, body=body, what=f"insert into {t.qualified}", table=t.qualified
                    )
                    or []
                )
                if not effect.on_conflict_skip:
                    for i, row in zip(chunk, got, strict=True):
                        out[i] = row
                else:
                    self._match_skipped(t, [rows[i] for i in chunk], chunk, got, out)
        if effect.labels:
            for i, label in enumerate(effect.labels):
                if label is None:
                    continue
                row = out[dup_of.get(i, i)]
                if row is not None:
                    rids[label] = RID(row["RID"])
                elif effect.on_conflict_skip:
                    existing = self._existing(t, rows[i])
                    if existing is not None:
                        rids[label] = existing
        return tuple(r for i, r in enumerate(out) if r is not None and i not in dup_of)

    def _match_skipped(
        self,
        t: TableDef,
        sent: list[dict[str, Any]],
        idxs: list[int],
        got: list[dict[str, Any]],
        out: list[dict[str, Any] | None],
    ) -> None:
        keys = [k.columns for k in t.keys]
        remaining = list(got)
        for i, row in zip(idxs, sent, strict=True):
            for r in remaining:
                if any(all(c in row and r.get(c) == row[c] for c in k) for k in keys) or (
                    not keys and all(r.get(c) == v for c, v in row.items())
                ):
                    out[i] = r
                    remaining.remove(r)
                    break

    def _existing(self, t: TableDef, row: Mapping[str, Any]) -> RID | None:
        for k in t.keys:
            if all(row.get(c) is not None for c in k.columns):
                hits = self.query(t.schema, t.name, {c: row[c] for c in k.columns}, columns=["RID"], limit=1)
                if hits:
                    return RID(hits[0]["RID"])
        return None

    def _update(self, t: TableDef, effect: Update, rids: dict[str, RID]) -> None:
        check_columns(t, effect.key)
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for r in effect.rows:
            row = resolve_refs(r, rids)
            cols = tuple(sorted(c for c in row if c not in effect.key))
            groups.setdefault(cols, []).append(row)
        for cols, rows in groups.items():
            check_writable(t, cols, "update")
            path = (
                f"/attributegroup/{_u(t.schema)}:{_u(t.name)}/"
                f"{','.join(_u(k) for k in effect.key)};{','.join(_u(c) for c in cols)}"
            )
            for start in range(0, len(rows), self.batch_size):
                chunk = rows[start : start + self.batch_size]
                try:
                    got = (
                        self._request("PUT", path, body=chunk, what=f"update of {t.qualified}", table=t.qualified) or []
                    )
                except ConflictError as e:
                    # documented: a row whose key matches no stored row "will cause an error" (409
                    # "Input row key (...) does not match existing entity."); nothing was updated
                    if "does not match existing" not in str(e):
                        raise
                    self._check_updated(t, effect.key, chunk)
                    raise
                if len(got) < len(chunk):
                    # the real server skips unmatched rows (200, fewer rows; docs/server-contract.md): check them
                    self._check_updated(t, effect.key, chunk)

    def _set_status(self, t: TableDef, effect: SetStatus) -> tuple[dict[str, Any], ...]:
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
            path = f"/attributegroup/{_u(t.schema)}:{_u(t.name)}/RID,{_EXPECTED}:={_u(STATUS_COLUMN)};" + ",".join(
                _u(c) for c in cols
            )
            for start in range(0, len(rows), self.batch_size):
                chunk = rows[start : start + self.batch_size]
                try:
                    got = self._request("PUT", path, body=chunk, what="status change", table=t.qualified) or []
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
                        for r in self.query(
                            t.schema, t.name, {"RID": [r["RID"] for r in lost]}, columns=["RID", STATUS_COLUMN]
                        )
                    }
                    first = lost[0]
                    if first["RID"] not in held:
                        raise RIDNotFound(first["RID"], t.qualified)
                    raise StatusConflict(first["RID"], first[_EXPECTED], first[STATUS_COLUMN], held[first["RID"]])
        return tuple(written)

    def _check_updated(self, t: TableDef, key: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
        # raise for the first row whose key matches no stored row
        for row in rows:
            if not self.query(t.schema, t.name, {k: row[k] for k in key}, columns=list(key), limit=1):
                value = row[key[0]] if len(key) == 1 else {k: row[k] for k in key}
                if key == ("RID",):
                    raise RIDNotFound(value, t.qualified)
                raise NotFound(f"update of {t.qualified}: no row has {list(key)} = {value!r}")

    def _delete(self, t: TableDef, effect: Delete, rids: dict[str, RID]) -> None:
        check_columns(t, [effect.column, *effect.where])
        values = list(resolve_refs({str(i): v for i, v in enumerate(effect.values)}, rids).values())
        where = resolve_refs(effect.where, rids)
        if not values:
            return
        items = [(effect.column, values, True), *((c, v, False) for c, v in where.items())]
        base = self._entity(t)
        for part in self._budgeted(items, lambda it: base + "".join(f"/{f}" for f in _filters(it) or ()), None):
            path = base + "".join(f"/{f}" for f in _filters(part) or ())
            try:
                self._request("DELETE", path, what=f"delete from {t.qualified}", table=t.qualified)
            except NotFound:
                continue  # nothing matched

    # ------------------------------------------------------------------------------------ url budget

    def _prefix(self, snapshot: str | None) -> str:
        """The request path every ERMrest URL of this catalog starts with (``/ermrest/catalog/N[@SNAP]``)."""
        return f"/ermrest/catalog/{_u(self.catalog_id)}" + (f"@{_u(snapshot)}" if snapshot else "")

    def _budgeted(
        self,
        items: list[tuple[str, Any, bool]],
        render: Any,
        snapshot: str | None,
    ) -> list[list[tuple[str, Any, bool]]]:
        """``items`` (``where_items``) as one or more item lists whose URLs (``render(items)`` after the
        catalog prefix) fit in ``url_budget`` bytes: value lists are split, the longest first. Together the
        parts select exactly the rows ``items`` select (a disjunction split into disjunctions)."""
        items = [(c, list(dict.fromkeys(v)) if many else v, many) for c, v, many in items]
        prefix = len(self._prefix(snapshot))
        if prefix + len(render(items)) <= self.url_budget:
            return [items]
        lists = [i for i, (_, v, many) in enumerate(items) if many and len(v) > 1]
        if not lists:
            raise ValidationError(
                f"an ERMrest request of {prefix + len(render(items))} bytes exceeds url_budget={self.url_budget} "
                "and has no list of values to split; use shorter values"
            )
        k = max(lists, key=lambda i: len(";".join(_term(items[i][0], v) for v in items[i][1])))
        col, values, _ = items[k]
        rest = items[:k] + items[k + 1 :]
        room = self.url_budget - prefix - len(render(rest)) - 1  # the "/" before the split filter
        groups: list[list[Any]] = []
        cur: list[Any] = []
        size = -1
        for v in values:
            part = len(_term(col, v)) + 1
            if part - 1 > room:
                raise ValidationError(
                    f"value {v!r} of column {col!r} does not fit in an ERMrest URL of url_budget={self.url_budget} "
                    "bytes with the request's other filters"
                )
            if cur and size + part > room:
                groups.append(cur)
                cur, size = [], -1
            cur.append(v)
            size += part
        groups.append(cur)
        out: list[list[tuple[str, Any, bool]]] = []
        for g in groups:
            out.extend(self._budgeted([*items[:k], (col, g, True), *items[k + 1 :]], render, snapshot))
        return out

    # ------------------------------------------------------------------------------------ reads

    def query(
        self,
        schema: str,
        table: str,
        where: Where | None = None,
        *,
        columns: Sequence[str] | None = None,
        order_by: Sequence[str] = (),
        limit: int | None = None,
        snapshot: str | None = None,
    ) -> list[dict[str, Any]]:
        t = self._table(schema, table)
        items = where_items(where)
        check_columns(t, [*(columns or ()), *(c for c, _, _ in items), *order_by])
        if _filters(items) is None:
            return []
        sort = [*order_by, *(["RID"] if "RID" not in order_by else [])]
        project = list(columns) if columns else None
        # ERMrest answers 400 to an /attribute/ path sorted on a column it does not project
        use_attribute = project is not None and all(c in project for c in sort)
        if project is not None and not use_attribute and "RID" not in order_by and set(order_by) <= set(project):
            sort, use_attribute = list(order_by), True
        head = "attribute" if use_attribute else "entity"
        suffix = ""
        if use_attribute and project is not None:
            suffix += "/" + ",".join(_u(c) for c in project)
        if sort:
            suffix += "@sort(" + ",".join(_u(c) for c in sort) + ")"
        # an absent ?limit= lets the server apply its configured default_limit (100 unless configured
        # otherwise in ERMrest's source), so "no limit" is spelled out
        suffix += f"?limit={int(limit)}" if limit is not None else "?limit=none"

        def render(it: list[tuple[str, Any, bool]]) -> str:
            return f"/{head}/{_u(schema)}:{_u(table)}" + "".join(f"/{f}" for f in _filters(it) or ()) + suffix

        parts = self._budgeted(items, render, snapshot)
        rows: list[dict[str, Any]] = []
        for part in parts:
            what = f"query of {t.qualified}"
            rows.extend(self._request("GET", render(part), snapshot=snapshot, what=what, table=t.qualified) or [])
        if len(parts) > 1:
            rows.sort(key=lambda r: tuple(_sort_key(r.get(c)) for c in sort))
            if limit is not None:
                rows = rows[: int(limit)]
        if project is not None and not use_attribute:
            rows = [{c: r.get(c) for c in project} for r in rows]
        return rows

    def query_linked(
        self,
        schema: str,
        table: str,
        where: Where | None = None,
        *,
        via: str,
        target_schema: str,
        target_table: str,
        target_column: str = "RID",
        columns: Sequence[str] | None = None,
        limit: int | None = None,
        snapshot: str | None = None,
    ) -> list[dict[str, Any]]:
        # naming.md "Linkage by Explicit Column Mapping": /S:T/<filters>/(via)=(TS:TT:TC) joins the filtered
        # source rows to the target table and denotes the target's entities (the right-most table
        # instance); "joins in the path may be used to filter out rows but do not cause duplicate rows"
        src = self._table(schema, table)
        dst = self._table(target_schema, target_table)
        items = where_items(where)
        check_columns(src, [via, *(c for c, _, _ in items)])
        check_columns(dst, [target_column, *(columns or ())])
        if _filters(items) is None or (limit is not None and int(limit) <= 0):
            return []  # nothing can match (and ?limit=0 is not sent to the server)
        link = f"({_u(via)})=({_u(target_schema)}:{_u(target_table)}:{_u(target_column)})"
        project = list(columns) if columns else None
        head = "/entity/" if project is None else "/attribute/"
        # on /attribute/ a sort key must be a projected column: RID is projected and dropped again
        tail = "" if project is None else "/" + ",".join(_u(c) for c in dict.fromkeys([*project, "RID"]))
        tail += "@sort(RID)" + (f"?limit={int(limit)}" if limit is not None else "?limit=none")

        def render(it: list[tuple[str, Any, bool]]) -> str:
            return head + f"{_u(schema)}:{_u(table)}" + "".join(f"/{f}" for f in _filters(it) or ()) + f"/{link}{tail}"

        what = f"query of {dst.qualified} through {src.qualified}.{via}"
        parts = self._budgeted(items, render, snapshot)
        rows: list[dict[str, Any]] = []
        for part in parts:
            rows.extend(self._request("GET", render(part), snapshot=snapshot, what=what, table=dst.qualified) or [])
        if len(parts) > 1:  # a target row linked from source rows of two parts comes back twice
            rows = sorted({r["RID"]: r for r in rows}.values(), key=lambda r: str(r["RID"]))
            if limit is not None:
                rows = rows[: int(limit)]
        if project is not None and "RID" not in project:
            rows = [{c: r.get(c) for c in project} for r in rows]
        return rows

    def snapshot(self) -> str:
        doc = self._request("GET", "/", what="catalog status")
        return str(doc["snaptime"])

    def resolve_rid(self, rid: RID) -> tuple[str, str]:
        if not is_rid(rid):
            raise InvalidRID(rid)
        base, _, snap = str(rid).partition("@")
        try:
            doc = self._request("GET", f"/entity_rid/{_u(base)}", snapshot=snap or None, what=f"resolve {rid}")
        except (NotFound, UnknownTable) as e:
            raise RIDNotFound(rid) from e
        if not doc or doc.get("deleted_at"):
            raise RIDNotFound(rid)
        return str(doc["schema_name"]), str(doc["table_name"])

    # --- data (branch data): path queries with the filter algebra (deriva_ml.core.filters)

    def select_path(self, query: PathQuery, *, snapshot: str | None = None) -> list[dict[str, Any]]:
        """The rows a :class:`PathQuery` denotes: ``GET /entity/S:T0/<filters>/(via)=(S:T1:col)/<filters>...
        @sort(RID)[@after(R)]?limit=N`` (``/attribute/.../<columns>`` when projecting) — one request, unless
        the URL exceeds the budget: then the longest value list is split and the parts merged (RID order)."""
        tables = self._path_tables(query)
        last = tables[-1]
        project = list(query.columns) if query.columns else None
        if project is not None:
            check_columns(last, project)
        if query.limit is not None and query.limit <= 0:
            return []
        if any(f is None for f in (_render_filter(s.filter) for s in query.steps if s.filter is not None)):
            return []  # an empty value list at the top: nothing matches
        out_cols = None if project is None else list(dict.fromkeys([*project, "RID"]))
        head = "/entity/" if out_cols is None else "/attribute/"
        tail = "" if out_cols is None else "/" + ",".join(_u(c) for c in out_cols)
        tail += "@sort(RID)" + (f"@after({_u(query.after)})" if query.after is not None else "")
        tail += f"?limit={int(query.limit)}" if query.limit is not None else "?limit=none"
        rows: list[dict[str, Any]] = []
        parts = self._path_parts(query, lambda q: head + _path(q) + tail, snapshot)
        for part in parts:
            url = head + _path(part) + tail
            rows.extend(self._request("GET", url, snapshot=snapshot, what=f"query of {last.qualified}") or [])
        if len(parts) > 1:
            rows = sorted({r["RID"]: r for r in rows}.values(), key=lambda r: str(r["RID"]))
            if query.limit is not None:
                rows = rows[: int(query.limit)]
        if project is not None and "RID" not in project:
            rows = [{c: r.get(c) for c in project} for r in rows]
        return rows

    def count_path(self, query: PathQuery, *, snapshot: str | None = None) -> int:
        """How many rows :meth:`select_path` would return without a limit: ``GET /aggregate/<path>/
        cnt:=cnt_d(RID)`` (one request; a path split for the URL budget counts the merged RIDs instead)."""
        self._path_tables(query)
        query = attrs.evolve(query, limit=None, columns=None)
        if any(f is None for f in (_render_filter(s.filter) for s in query.steps if s.filter is not None)):
            return 0
        tail = "/cnt:=cnt_d(RID)"
        parts = self._path_parts(query, lambda q: "/aggregate/" + _path(q) + tail, snapshot)
        if len(parts) > 1:
            return len(self.select_path(attrs.evolve(query, columns=("RID",)), snapshot=snapshot))
        doc = self._request("GET", "/aggregate/" + _path(query) + tail, snapshot=snapshot, what="count")
        return int((doc or [{}])[0].get("cnt") or 0)

    def path_builder(self) -> Any:
        """deriva-py's datapath ``PathBuilder`` of this catalog, built once (building fetches the whole model)."""
        if getattr(self, "_path_builder", None) is None:
            self._path_builder = self._binding(None).getPathBuilder()
        return self._path_builder

    def _path_tables(self, query: PathQuery) -> list[TableDef]:
        from deriva_ml.core.filters import columns_of

        tables = [self._table(s.schema, s.table) for s in query.steps]
        for i, (step, t) in enumerate(zip(query.steps, tables, strict=True)):
            check_columns(t, columns_of(step.filter))
            if i:
                check_columns(tables[i - 1], [step.via or ""])
                check_columns(t, [step.target_column or ""])
        return tables

    def _path_parts(self, query: PathQuery, render: Any, snapshot: str | None) -> list[PathQuery]:
        """``query`` as queries whose URLs fit the budget (the longest value list halved until they do)."""
        from deriva_ml.core.filters import In, split_largest_in

        if len(self._prefix(snapshot)) + len(render(query)) <= self.url_budget:
            return [query]

        def longest(step: Any) -> int:
            f = step.filter
            conj = list(f.parts) if type(f).__name__ == "And" else [f]
            return max((len(p.values) for p in conj if isinstance(p, In)), default=0)

        k = max(range(len(query.steps)), key=lambda i: longest(query.steps[i]))
        pieces = split_largest_in(query.steps[k].filter, 2)
        if pieces is None:
            raise ValidationError(
                f"an ERMrest request of {len(render(query))} bytes exceeds url_budget={self.url_budget} "
                "and has no list of values to split; use shorter values"
            )
        out: list[PathQuery] = []
        for piece in pieces:
            steps = list(query.steps)
            steps[k] = attrs.evolve(steps[k], filter=piece)
            out.extend(self._path_parts(attrs.evolve(query, steps=tuple(steps)), render, snapshot))
        return out

    def close(self) -> None:
        for b in self._bindings.values():
            session = getattr(b, "_session", None)
            if session is not None:
                session.close()
        self._bindings.clear()


_ERM_OPS = {"lt": "::lt::", "leq": "::leq::", "gt": "::gt::", "geq": "::geq::"}
#: A predicate no row satisfies (RID is never NULL), for an empty value list inside a compound filter.
_FALSE = "RID::null::"


def _render_filter(f: Any, *, top: bool = True) -> str | None:
    """ERMrest's filter language for a filter record (data/naming.md "Filter Language"): ``C=v``,
    ``C::gt::v``, ``C::null::``, ``&``, ``;``, ``!`` and parentheses. At the top, an empty value list
    gives None (nothing can match); inside a compound filter it is a predicate that is never true."""
    from deriva_ml.core.filters import And, Cmp, In, Not, Or

    if isinstance(f, Cmp):
        if f.op == "null":
            return f"{_u(f.column)}::null::"
        if f.op == "eq":
            return f"{_u(f.column)}={_literal(f.value)}"
        return f"{_u(f.column)}{_ERM_OPS[f.op]}{_literal(f.value)}"
    if isinstance(f, In):
        if not f.values:
            return None if top else _FALSE
        terms = ";".join(_term(f.column, v) for v in dict.fromkeys(f.values))
        return terms if top or len(f.values) == 1 else f"({terms})"
    if isinstance(f, And | Or):
        if not f.parts:
            return f"!{_FALSE}" if isinstance(f, And) else (None if top else _FALSE)
        sep = "&" if isinstance(f, And) else ";"
        rendered = []
        for p in f.parts:
            r = _render_filter(p, top=False)
            assert r is not None
            rendered.append(f"({r})" if isinstance(p, And | Or) else r)
        return sep.join(rendered)
    if isinstance(f, Not):
        r = _render_filter(f.part, top=False)
        assert r is not None
        return f"!({r})" if isinstance(f.part, And | Or | In) else f"!{r}"
    raise ValidationError(f"not a filter: {f!r}")


def _path(query: PathQuery) -> str:
    """``S:T0/<filters>/(via)=(S:T1:col)/<filters>/...``: a top-level conjunction is one element per part."""
    from deriva_ml.core.filters import And

    out = []
    for i, step in enumerate(query.steps):
        if i == 0:
            out.append(f"{_u(step.schema)}:{_u(step.table)}")
        else:
            out.append(f"({_u(step.via)})=({_u(step.schema)}:{_u(step.table)}:{_u(step.target_column)})")
        if step.filter is not None:
            conj = list(step.filter.parts) if isinstance(step.filter, And) and step.filter.parts else [step.filter]
            for p in conj:
                r = _render_filter(p)
                out.append(_FALSE if r is None else r)
    return "/".join(out)


def _rolled_back(text: str) -> bool:
    """Whether a 503 body says ERMrest rolled the request's transaction back (so it may be sent again)."""
    low = text.lower()
    return any(t in low for t in _ROLLED_BACK_TEXTS)


def _lookup_credential(hostname: str) -> Any:
    """deriva-py's ``get_credential`` for ``hostname`` (credential files are keyed by host name; with a
    ``host:port`` that has no entry, the bare host name is tried). deriva-py then sends a
    ``{"bearer-token": t}`` as ``Authorization: Bearer t`` and a ``{"cookie": "webauthn=..."}`` as a cookie."""
    from deriva.core import get_credential

    cred = get_credential(hostname)
    bare = hostname.rsplit(":", 1)[0] if hostname.count(":") == 1 else hostname
    if cred is None and bare != hostname:
        cred = get_credential(bare)
    return cred


def _filters(items: list[tuple[str, Any, bool]]) -> list[str] | None:
    """Path filter elements (conjoined by ``/``; ``;`` is disjunction) for ``where_items``; None when a
    condition can match no row (an empty list of values)."""
    out = []
    for col, value, many in items:
        if many:
            if not value:
                return None
            out.append(";".join(_term(col, v) for v in value))
        elif value is None:
            out.append(f"{_u(col)}::null::")
        else:
            out.append(f"{_u(col)}={_literal(value)}")
    return out


def _term(col: str, value: Any) -> str:
    """One disjunct of a filter: ``C=v`` or ``C::null::``."""
    return f"{_u(col)}::null::" if value is None else f"{_u(col)}={_literal(value)}"


def _sort_key(value: Any) -> tuple[bool, Any]:
    """Client-side re-sort of merged parts in ERMrest's order: ascending, nulls last."""
    return (value is None, value if value is not None else 0)


def _duplicates(t: TableDef, rows: list[dict[str, Any]]) -> dict[int, int]:
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


def _named(error: Exception, msg: str) -> Exception:
    """``error`` (its type and fields) with the server's message."""
    error.args = (msg,)
    return error


def _translate(response: Any, what: str, table: str | None) -> Exception:
    status = getattr(response, "status_code", 0)
    try:
        text = response.text if response is not None else ""
    except Exception:  # pragma: no cover - defensive
        text = ""
    detail = " ".join(text.split())[:500]
    low = detail.lower()
    msg = f"{what}: {detail or status}"
    if status in (401, 403):
        return PermissionDenied(msg)
    if status == 409:
        # model/schema.py, model/table.py: ConflictModel "Table T does not exist in schema S." /
        # "Requested column C does not exist in table T." (also for a table created after the snapshot read)
        m = re.search(r"(?:Requested )?table (.+?) does not exist in schema (.+?)\.", detail, re.IGNORECASE)
        if m:
            return _named(UnknownTable(f"{m.group(2)}:{m.group(1)}"), msg)
        m = re.search(r"Requested column (.+?) does not exist in table (.+?)\.", detail)
        if m:
            return _named(UnknownColumn(m.group(2), m.group(1)), msg)
        m = re.search(r"Schema (.+?) does not exist\.", detail)
        if m:
            return _named(UnknownTable(f"{m.group(1)}:{table or '?'}"), msg)
        if "foreign key" in low or "violates foreign" in low or "is not present in table" in low:
            return ForeignKeyError(msg)
        if "null value" in low or "not-null" in low:
            return ValidationError(msg)
        return ConflictError(msg)
    request = getattr(response, "request", None)
    sent = len(getattr(request, "path_url", "") or "")
    if status == 414 or (status == 404 and sent > 4000):
        # Apache, not ERMrest: the request line or decoded path is too long (see URL_BUDGET)
        return ValidationError(f"{what}: the server refused the URL as too long ({status}); lower url_budget")
    if status == 404:
        return NotFound(msg)
    if status in (502, 503, 504) or "lock" in low:
        return CatalogBusy(msg + " (retry later)")
    if status == 400:
        if "share the same unique key" in low:  # ERMrest: duplicate keys within one request body
            return ConflictError(msg)
        return ValidationError(msg)
    return CatalogError(msg)


# ---------------------------------------------------------------------------------------------- catalogs


def create_ml_catalog(
    hostname: str,
    project_name: str,
    *,
    credential: Mapping[str, Any] | None = None,
    session_config: Mapping[str, Any] | None = None,
    batch_size: int = 1000,
    scheme: str = "https",
) -> ErmrestCatalog:
    """Create a new catalog with the deriva-ml schema, an empty domain schema ``project_name`` and seeded terms.

    Requests: ``POST /ermrest/catalog``, ``GET /schema``, one ``POST /schema``, ``GET /schema``, then one
    ``POST /entity`` per seeded vocabulary.
    """
    from deriva.core import DEFAULT_SESSION_CONFIG as DERIVA_DEFAULTS
    from deriva.core import DerivaServer

    cred = credential if credential is not None else _lookup_credential(hostname)
    config = {**DERIVA_DEFAULTS, **DEFAULT_SESSION_CONFIG, **(session_config or {})}
    server = DerivaServer(scheme, hostname, credentials=cred, session_config=config)
    import requests

    try:
        r = server.post("/ermrest/catalog")
        if r.status_code >= 400:
            r.raise_for_status()
    except requests.HTTPError as e:
        raise _translate(e.response, f"create catalog on {hostname}", None) from e
    catalog_id = str(r.json()["id"])
    cat = ErmrestCatalog(
        hostname, catalog_id, credential=cred, session_config=session_config, batch_size=batch_size, scheme=scheme
    )
    cat.request_count += 1
    cat.requests["POST"] += 1
    if project_name in (ML_SCHEMA, "public", "WWW"):
        raise ValidationError(f"project_name {project_name!r} is reserved; choose another domain schema name")
    cat.create_tables(ML_TABLES, schemas=[project_name])
    cat.apply(seed_batch())
    return cat
