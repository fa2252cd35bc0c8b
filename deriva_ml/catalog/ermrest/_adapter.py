"""A live ERMrest catalog through deriva-py's HTTP binding (this package alone imports ``deriva``).

Requests follow ERMrest's REST API (see ``docs/catalog.md`` for the exact URLs):

- model: ``GET /ermrest/catalog/N/schema`` once per instance (again only after DDL or ``refresh=True``);
  ``model_at(SNAP)``: ``GET /ermrest/catalog/N@SNAP/schema`` once per snapshot;
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
The adapter keeps the HTTP session and the port methods; the URL building, the batch writer, the model
documents and the error mapping are its sibling modules.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from deriva_ml.catalog._common import check_columns, check_path_columns, find_table, where_items
from deriva_ml.catalog.ermrest import _writer
from deriva_ml.catalog.ermrest._documents import model_from_document, table_document
from deriva_ml.catalog.ermrest._errors import rolled_back, translate
from deriva_ml.catalog.ermrest._urls import (
    URL_BUDGET,
    budgeted,
    catalog_prefix,
    filters,
    path,
    path_parts,
    render_filter,
    sort_key,
    u,
)
from deriva_ml.catalog.port import Where
from deriva_ml.core.effects import Batch, BatchResult
from deriva_ml.core.errors import (
    CatalogUnreachable,
    ConflictError,
    InvalidRID,
    NotFound,
    RIDNotFound,
    UnknownTable,
    ValidationError,
)
from deriva_ml.core.filters import PathQuery
from deriva_ml.core.retry import backoff_delays
from deriva_ml.core.rid import RID, is_rid
from deriva_ml.core.schema_defs import CatalogModel, TableDef

#: Retries of a request ERMrest rolled back (503 "Transaction aborted." on a serialization failure or
#: deadlock between concurrent writers, "Resources unavailable."): safe for any method, POST included,
#: because nothing was committed. Many jobs of a sweep writing to one catalog meet these routinely;
#: deriva-py's session retries 503 for idempotent methods only.
ROLLED_BACK_RETRIES = 8
ROLLED_BACK_DELAY = 0.1

#: Overrides of deriva-py's session config: a few quick retries instead of ~8 minutes of back-off.
DEFAULT_SESSION_CONFIG: Mapping[str, Any] = {
    "retry_connect": 2,
    "retry_read": 2,
    "retry_backoff_factor": 0.2,
    "retry_status_forcelist": [502, 503, 504],
    "cookie_jar": None,
}


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
        self._credential = credential if credential is not None else lookup_credential(hostname)
        self.request_count = 0
        self.requests: Counter[str] = Counter()
        self._model: CatalogModel | None = None
        self._schemas: set[str] = set()
        self._bindings: dict[str | None, Any] = {}
        self._snapshot_models: dict[str, CatalogModel] = {}
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
                    u(snapshot),
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
                    if not rolled_back(late.text):
                        raise
                    time.sleep(delays[attempt])
        except requests.HTTPError as e:
            raise translate(e.response, what or f"{method} {path}", table) from e
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

    def model_at(self, snapshot: str) -> CatalogModel:
        """The model at ``snapshot``: ``GET /ermrest/catalog/N@SNAP/schema`` once per snapshot (it never changes)."""
        found = self._snapshot_models.get(snapshot)
        if found is None:
            found = model_from_document(self._request("GET", "/schema", snapshot=snapshot, what="model at " + snapshot))
            self._snapshot_models[snapshot] = found
        return found

    def _table(self, schema: str, table: str, snapshot: str | None = None) -> TableDef:
        """The table as the model has it: at ``snapshot`` when that model was read (``model_at``), else now
        (a read at a snapshot is not preceded by a model request; the server checks it then)."""
        model = self._snapshot_models.get(snapshot) if snapshot else None
        return find_table(self.model() if model is None else model, schema, table)

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
        """Each effect of ``batch`` as requests, in order (see :mod:`._writer`)."""
        return _writer.apply(self, batch)

    # ------------------------------------------------------------------------------------ url budget

    def _prefix(self, snapshot: str | None) -> str:
        """The request path every ERMrest URL of this catalog starts with (``/ermrest/catalog/N[@SNAP]``)."""
        return catalog_prefix(self.catalog_id, snapshot)

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
        t = self._table(schema, table, snapshot)
        items = where_items(where)
        check_columns(t, [*(columns or ()), *(c for c, _, _ in items), *order_by])
        if filters(items) is None:
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
            suffix += "/" + ",".join(u(c) for c in project)
        if sort:
            suffix += "@sort(" + ",".join(u(c) for c in sort) + ")"
        # an absent ?limit= lets the server apply its configured default_limit (100 unless configured
        # otherwise in ERMrest's source), so "no limit" is spelled out
        suffix += f"?limit={int(limit)}" if limit is not None else "?limit=none"

        def render(it: list[tuple[str, Any, bool]]) -> str:
            return f"/{head}/{u(schema)}:{u(table)}" + "".join(f"/{f}" for f in filters(it) or ()) + suffix

        parts = budgeted(items, render, prefix_len=len(self._prefix(snapshot)), budget=self.url_budget)
        rows: list[dict[str, Any]] = []
        for part in parts:
            what = f"query of {t.qualified}"
            rows.extend(self._request("GET", render(part), snapshot=snapshot, what=what, table=t.qualified) or [])
        if len(parts) > 1:
            rows.sort(key=lambda r: tuple(sort_key(r.get(c)) for c in sort))
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
        src = self._table(schema, table, snapshot)
        dst = self._table(target_schema, target_table, snapshot)
        items = where_items(where)
        check_columns(src, [via, *(c for c, _, _ in items)])
        check_columns(dst, [target_column, *(columns or ())])
        if filters(items) is None or (limit is not None and int(limit) <= 0):
            return []  # nothing can match (and ?limit=0 is not sent to the server)
        link = f"({u(via)})=({u(target_schema)}:{u(target_table)}:{u(target_column)})"
        project = list(columns) if columns else None
        head = "/entity/" if project is None else "/attribute/"
        # on /attribute/ a sort key must be a projected column: RID is projected and dropped again
        tail = "" if project is None else "/" + ",".join(u(c) for c in dict.fromkeys([*project, "RID"]))
        tail += "@sort(RID)" + (f"?limit={int(limit)}" if limit is not None else "?limit=none")

        def render(it: list[tuple[str, Any, bool]]) -> str:
            return head + f"{u(schema)}:{u(table)}" + "".join(f"/{f}" for f in filters(it) or ()) + f"/{link}{tail}"

        what = f"query of {dst.qualified} through {src.qualified}.{via}"
        parts = budgeted(items, render, prefix_len=len(self._prefix(snapshot)), budget=self.url_budget)
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
            doc = self._request("GET", f"/entity_rid/{u(base)}", snapshot=snap or None, what=f"resolve {rid}")
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
        tables = self._path_tables(query, snapshot)
        last = tables[-1]
        project = list(query.columns) if query.columns else None
        if project is not None:
            check_columns(last, project)
        if query.limit is not None and query.limit <= 0:
            return []
        if any(f is None for f in (render_filter(s.filter) for s in query.steps if s.filter is not None)):
            return []  # an empty value list at the top: nothing matches
        out_cols = None if project is None else list(dict.fromkeys([*project, "RID"]))
        head = "/entity/" if out_cols is None else "/attribute/"
        tail = "" if out_cols is None else "/" + ",".join(u(c) for c in out_cols)
        tail += "@sort(RID)" + (f"@after({u(query.after)})" if query.after is not None else "")
        tail += f"?limit={int(query.limit)}" if query.limit is not None else "?limit=none"
        rows: list[dict[str, Any]] = []
        parts = path_parts(
            query, lambda q: head + path(q) + tail, prefix_len=len(self._prefix(snapshot)), budget=self.url_budget
        )
        for part in parts:
            url = head + path(part) + tail
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
        self._path_tables(query, snapshot)
        query = attrs.evolve(query, limit=None, columns=None)
        if any(f is None for f in (render_filter(s.filter) for s in query.steps if s.filter is not None)):
            return 0
        tail = "/cnt:=cnt_d(RID)"
        parts = path_parts(
            query,
            lambda q: "/aggregate/" + path(q) + tail,
            prefix_len=len(self._prefix(snapshot)),
            budget=self.url_budget,
        )
        if len(parts) > 1:
            return len(self.select_path(attrs.evolve(query, columns=("RID",)), snapshot=snapshot))
        doc = self._request("GET", "/aggregate/" + path(query) + tail, snapshot=snapshot, what="count")
        return int((doc or [{}])[0].get("cnt") or 0)

    def path_builder(self) -> Any:
        """deriva-py's datapath ``PathBuilder`` of this catalog, built once (building fetches the whole model)."""
        if getattr(self, "_path_builder", None) is None:
            self._path_builder = self._binding(None).getPathBuilder()
        return self._path_builder

    def _path_tables(self, query: PathQuery, snapshot: str | None = None) -> list[TableDef]:
        tables = [self._table(s.schema, s.table, snapshot) for s in query.steps]
        check_path_columns(query, tables)
        return tables

    def close(self) -> None:
        for b in self._bindings.values():
            session = getattr(b, "_session", None)
            if session is not None:
                session.close()
        self._bindings.clear()


def lookup_credential(hostname: str) -> Any:
    """deriva-py's ``get_credential`` for ``hostname`` (credential files are keyed by host name; with a
    ``host:port`` that has no entry, the bare host name is tried). deriva-py then sends a
    ``{"bearer-token": t}`` as ``Authorization: Bearer t`` and a ``{"cookie": "webauthn=..."}`` as a cookie."""
    from deriva.core import get_credential

    cred = get_credential(hostname)
    bare = hostname.rsplit(":", 1)[0] if hostname.count(":") == 1 else hostname
    if cred is None and bare != hostname:
        cred = get_credential(bare)
    return cred
