"""A small stateful ERMrest on 127.0.0.1: the subset of ERMrest's documented REST API deriva_ml uses.

Storage is a real SQLiteCatalog per catalog; this module only speaks ERMrest's URLs, bodies and status
codes. ``log`` records every request (method, raw path, JSON body); ``fail_next`` injects status codes.

It answers like the real server behind Apache + mod_wsgi where deriva_ml depends on it (measured with raw
requests on the lab; the table is docs/server-contract.md): a decoded request path over 4,040 bytes is
404 with an HTML page and a request target over 8,178 bytes 414; an unknown table or column (also a table
created after the snapshot read) is 409 "... does not exist"; ``/attribute/`` sorted on a column it does
not project is 400; an attributegroup update skips rows whose key matches nothing (200, fewer rows); a
null in a not-null column is 409; a value of the wrong type is 400; RIDs are short (``1S8``) and RCB/RMB
hold the user name. Snapshots are ``<batches>-<DDL count>`` (so a DDL makes a new snapshot too); the model
at a snapshot and columns added later are ``ermrest_fake_model``'s.
"""

from __future__ import annotations

import atexit
import copy
import json
import sqlite3
import tempfile
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

from ermrest_fake_model import add_column, model_doc, rows_at, table_at
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from deriva_ml.catalog.ermrest import table_from_document
from deriva_ml.catalog.sqlite import SQLiteCatalog
from deriva_ml.core.effects import Batch, Delete, Insert, Update
from deriva_ml.core.errors import (
    ConflictError,
    DerivaMLException,
    ForeignKeyError,
    NotFound,
    ValidationError,
)
from deriva_ml.core.schema_defs import SYSTEM_COLUMNS

#: Apache + mod_wsgi limits measured on the lab: the decoded path (mod_wsgi stats it: PATH_MAX) and the
#: request target ("GET <target> HTTP/1.1" within LimitRequestLine 8190).
MAX_DECODED_PATH = 4040
MAX_TARGET = 8178
#: The user name ERMrest writes into RCB/RMB (webauthn's client id).
FAKE_USER = "fake-user"
#: The first RID the fake issues (a fresh ERMrest catalog's user rows start around here: ``1S8``).
FIRST_RID = 1800

_APACHE_404 = (
    '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n<title>404 Not Found</title>\n'
    "</head><body>\n<h1>Not Found</h1>\n<p>The requested URL was not found on this server.</p>\n</body></html>\n"
)
_APACHE_414 = (
    '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n<title>414 Request-URI Too Long</title>\n'
    "</head><body>\n<h1>Request-URI Too Long</h1>\n<p>The requested URL's length exceeds the capacity\n"
    "limit for this server.<br />\n</p>\n</body></html>\n"
)


class _Conflict(Exception):
    """409 with ERMrest's text (``ConflictModel`` / ``ConflictData``)."""


class _BadRequest(Exception):
    """400 with ERMrest's text (``BadData`` / ``BadSyntax``)."""


#: ERMrest's ``default_limit`` configuration default (``apicore.py``: ``ermrest_config.get('default_limit',
#: 100)``): a GET without ``?limit=`` may be truncated, so clients send ``?limit=none``.
DEFAULT_LIMIT = 100


class _Catalog:
    def __init__(self, path: Path, *, fresh: bool = True) -> None:
        self.store = SQLiteCatalog(path, user=FAKE_USER, guard_status=False)  # the real server has no status rules
        if fresh:
            # short RIDs like a fresh ERMrest catalog's (the store's counter starts at 1-0000 otherwise)
            self.store._conn.execute("UPDATE _dml_meta SET value = ? WHERE key = 'next_rid'", (FIRST_RID,))
        self.ddl = 0  # DDL requests so far: part of the snapshot id
        self.created: dict[tuple[str, ...], int] = {}  # schema / table / column -> the DDL count that created it
        self.docs: dict[str, dict[str, Any]] = {"public": {"schema_name": "public", "tables": {}}}
        self.rid_tables: dict[str, tuple[str, str]] = {}  # every RID ever issued -> (schema, table)
        self.deleted: dict[str, str] = {}  # deleted RID -> snapshot before the deletion

    def copy_to(self, path: Path) -> _Catalog:
        """A new catalog at ``path`` in this one's state: rows, RID counter, snapshots, model documents, history."""
        dest = sqlite3.connect(str(path))
        try:
            with self.store._lock:
                self.store._conn.backup(dest)
        finally:
            dest.close()
        twin = _Catalog(path, fresh=False)
        twin.ddl = self.ddl
        twin.created = dict(self.created)
        twin.docs = copy.deepcopy(self.docs)
        twin.rid_tables = dict(self.rid_tables)
        twin.deleted = dict(self.deleted)
        return twin

    def snaptime(self) -> str:
        return f"{self.store.snapshot()}-{self.ddl}"

    def at(self, snap: str | None) -> tuple[str | None, int | None]:
        """``(store snapshot, DDL count)`` of a snapshot id (``(None, None)`` for the live catalog)."""
        if not snap:
            return None, None
        seq, _, ddl = snap.partition("-")
        if not (seq.isdigit() and ddl.isdigit()):
            raise _BadRequest(f"Request malformed. Detail: Invalid snapshot {snap!r}.")
        return seq, int(ddl)

    def table(self, schema: str, table: str, snap: str | None = None) -> Any:
        """The table (409 "does not exist" when it does not, or did not yet at ``snap``)."""
        t = self.store.model().table(schema, table)
        _, ddl = self.at(snap)
        if t is None or (ddl is not None and self.created.get((schema, table), 0) > ddl):
            if schema not in self.docs and t is None:
                raise _Conflict(f"Schema {schema} does not exist.")
            raise _Conflict(f"Table {table} does not exist in schema {schema}.")
        return table_at(self, t, ddl)


class _Handler(WSGIRequestHandler):
    # werkzeug writes the headers and the body in two sends: with Nagle on, each keep-alive answer waits for
    # the client's delayed ACK (~40 ms a request; FIELD-NOTES "Test servers on loopback").
    disable_nagle_algorithm = True

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """No access log on stderr (``log`` keeps every request)."""


class FakeErmrest:
    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory()
        self.catalogs: dict[str, _Catalog] = {}
        self.log: list[tuple[str, str, Any]] = []
        self.fail_next: list[tuple[int, str]] = []
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True, request_handler=_Handler)
        self.host = f"127.0.0.1:{self._server.server_port}"
        # a short poll so that shutdown() returns at once (the default 0.5 s poll cost every test half a second)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> FakeErmrest:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        for c in self.catalogs.values():
            c.store.close()
        self._dir.cleanup()

    def add_copy(self, template: _Catalog) -> str:
        """A new catalog holding a copy of ``template`` (a catalog of this fake or another); returns its id."""
        with self._lock:
            cid = str(len(self.catalogs) + 1)
            self.catalogs[cid] = template.copy_to(Path(self._dir.name) / f"{cid}.sqlite")
        return cid

    def count(self, method: str, contains: str = "") -> int:
        return sum(1 for m, p, _ in self.log if m == method and contains in p)

    # -------------------------------------------------------------------------------------- wsgi

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        raw = environ.get("REQUEST_URI") or environ.get("RAW_URI") or request.full_path
        path, _, query = raw.partition("?")
        if len(raw) > MAX_TARGET:
            self.log.append((request.method, raw, None))
            return Response(_APACHE_414, status=414, content_type="text/html; charset=iso-8859-1")(
                environ, start_response
            )
        if len(unquote(path).encode()) > MAX_DECODED_PATH:
            self.log.append((request.method, raw, None))
            return Response(_APACHE_404, status=404, content_type="text/html; charset=iso-8859-1")(
                environ, start_response
            )
        body = request.get_data()
        doc = json.loads(body) if body else None
        with self._lock:
            self.log.append((request.method, raw, doc))
            if self.fail_next:
                status, text = self.fail_next.pop(0)
                return Response(text, status=status)(environ, start_response)
            etag_of = self._etag_source(path)
            if etag_of is not None and request.method != "GET":
                # api.py http_check_preconditions: If-Match naming another state fails the write (412)
                wanted = [t.strip() for t in environ.get("HTTP_IF_MATCH", "").split(",") if t.strip()]
                if wanted and "*" not in wanted and etag_of() not in wanted:
                    return Response("412 Precondition Failed", status=412, headers={"ETag": etag_of()})(
                        environ, start_response
                    )
            try:
                status, out = self._dispatch(request.method, path, parse_qs(query), doc)
            except _Conflict as e:
                status, out = 409, f"Request conflicts with state of server. Detail: {e}\n"
            except _BadRequest as e:
                status, out = 400, f"Request malformed. Detail: {e}\n"
            except ForeignKeyError as e:
                status, out = 409, f"insert or update violates foreign key constraint: {e}"
            except ConflictError as e:
                status, out = 409, f"duplicate key value violates unique constraint: {e}"
            except ValidationError as e:
                status, out = 400, f"Bad Request: {e}"
            except NotFound as e:
                status, out = 404, f"Not Found: {e}"
            except DerivaMLException as e:
                status, out = 500, str(e)
            headers = {"ETag": etag_of()} if etag_of is not None and status < 400 else {}
        if isinstance(out, str):
            return Response(out, status=status, content_type="text/plain", headers=headers)(environ, start_response)
        if out is None:
            return Response(status=204, headers=headers)(environ, start_response)
        return Response(json.dumps(out), status=status, content_type="application/json", headers=headers)(
            environ, start_response
        )

    def _etag_source(self, path: str) -> Any:
        """For a data resource (entity/attribute/attributegroup), a function giving its ETag now.

        Like ERMrest (``ermpath/resource.py`` ``etag``: the catalog's current snapshot time, in
        ``api.py`` ``set_http_etag``'s ``"<roles>;<accept>;<version>"`` form): any write to the catalog
        changes the ETag of every data resource. Others: None.
        """
        parts = path.split("/")[1:]
        if (
            len(parts) < 5
            or parts[:2] != ["ermrest", "catalog"]
            or parts[3] not in ("entity", "attribute", "attributegroup")
        ):
            return None
        cid = unquote(parts[2]).partition("@")[0]
        cat = self.catalogs.get(cid)
        if cat is None:
            return None
        return lambda: f'"fake-roles;*;{cat.store.snapshot()}"'

    def _dispatch(self, method: str, path: str, query: dict[str, list[str]], doc: Any) -> tuple[int, Any]:
        parts = path.split("/")[1:]  # ['ermrest', 'catalog', id, ...]
        if parts[:2] != ["ermrest", "catalog"]:
            return 404, "no such service"
        if len(parts) == 2 or (len(parts) == 3 and parts[2] == ""):
            if method != "POST":
                return 405, "method not allowed"
            cid = str(len(self.catalogs) + 1)
            self.catalogs[cid] = _Catalog(Path(self._dir.name) / f"{cid}.sqlite")
            return 201, {"id": cid}
        cid, _, snap = unquote(parts[2]).partition("@")
        cat = self.catalogs.get(cid)
        if cat is None:
            return 404, f"catalog {cid} not found"
        rest = parts[3:]
        if (
            method == "GET"
            and len(rest) >= 2
            and rest[0] in ("entity", "attribute", "aggregate")
            and (rest[0] == "aggregate" or _advanced(rest[1:]))
        ):
            return 200, self._path_query(cat, rest[0], rest[1:], query, snap or None)
        if rest and "@sort(" in rest[-1] and len(rest) == 2:
            head, _, tail = rest[1].partition("@sort(")
            rest = [rest[0], head, "@sort(" + tail]
        if not rest or rest == [""]:
            return 200, {"id": cid, "snaptime": cat.snaptime()}
        api = rest[0]
        if api == "schema":
            if method == "GET":
                return 200, model_doc(cat, cat.at(snap or None)[1])
            if method == "POST" and len(rest) == 5 and rest[2] == "table" and rest[4] == "column":
                return add_column(cat, unquote(rest[1]), unquote(rest[3]), doc)
            if method == "POST":
                return self._ddl(cat, doc)
        if api == "entity_rid":
            # data/rest.md "Entity Resolution": 200 {schema_name, table_name, RID}; a RID whose row was
            # deleted still resolves (200) with deleted_at/last_visible_at/last_visible_snaptime; else 404
            rid = unquote(rest[1])
            if rid in cat.deleted and not snap:
                s, t = cat.rid_tables[rid]
                return 200, {
                    "schema_name": s,
                    "table_name": t,
                    "RID": rid,
                    "deleted_at": "2000-01-01T00:00:00+00:00",
                    "last_visible_at": "2000-01-01T00:00:00+00:00",
                    "last_visible_snaptime": cat.deleted[rid],
                }
            seq, _ = cat.at(snap or None)
            # at a snapshot: the row as it was then (a row deleted later still resolves: the store's tombstones)
            s, t = cat.store.resolve_rid(rid if seq is None else f"{rid}@{seq}")
            return 200, {"schema_name": s, "table_name": t, "RID": rid}
        if api in ("entity", "attribute", "attributegroup"):
            schema, _, table = rest[1].partition(":")
            schema, table = unquote(schema), unquote(table)
            segs = rest[2:]
            sort: list[str] = []
            if segs and "@sort(" in segs[-1]:
                if segs[-1].startswith("@sort("):
                    segs = [*segs[:-1], "x" + segs[-1]]
                    strip_head = True
                else:
                    strip_head = False
                last, _, s = segs[-1].partition("@sort(")
                sort = [unquote(c) for c in s.rstrip(")").split(",")]
                segs = [*segs[:-1], last] if last and not strip_head else segs[:-1]
            tdef = cat.table(schema, table, snap or None)
            if api == "entity" and method == "POST":
                return self._insert(cat, schema, table, query, doc)
            if api == "attributegroup" and method == "PUT":
                return self._update(cat, schema, table, segs[0], doc)
            project = None
            if api == "attribute" and segs and "=" not in segs[-1] and "::" not in segs[-1]:
                project = [unquote(c) for c in segs[-1].split(",")]
                segs = segs[:-1]
                for c in sort:  # ermrest/url/ast/data/path.py: sort keys must be output columns
                    if c not in project:
                        raise _BadRequest(f'Sort key "{c}" not among output columns.')
            linked = any(seg.startswith(("(", "left(", "right(", "full(")) for seg in segs)
            for c in [*(project or ()), *(sort if project is None else ())] if not linked else ():
                _column(tdef, c)
            raw_limit = query.get("limit", [str(DEFAULT_LIMIT)])[0]
            limit = None if raw_limit.lower() == "none" else int(raw_limit)
            links = [i for i, seg in enumerate(segs) if seg.startswith(("(", "left(", "right(", "full("))]
            if links:
                if method != "GET" or api == "attributegroup":
                    return 400, f"fake supports linked paths on GET /entity and /attribute only: {method} {path}"
                return 200, self._linked(cat, schema, table, segs, links, project, sort, limit, snap or None)
            where = self._filters(segs)
            for c, _ in where:
                _column(tdef, c)
            if method == "GET":
                return 200, self._select(cat, schema, table, where, project, sort, limit, snap or None)
            if method == "DELETE" and api == "entity":
                rows = self._select(cat, schema, table, where, ["RID"], [], None, None)
                if not rows:  # ermpath EntityPath.delete: raise NotFound('entities matching request path')
                    return 404, "404 Not Found\nThe requested entities matching request path could not be found.\n"
                before = cat.store.snapshot()
                cat.store.apply(Batch([Delete(schema, table, "RID", [r["RID"] for r in rows])]))
                for r in rows:
                    cat.deleted[r["RID"]] = before
                return 204, None
        return 400, f"unsupported request {method} {path}"

    # --- data (branch data): filter language, multi-step paths, @after paging, /aggregate/ counts

    def _path_query(
        self, cat: _Catalog, api: str, elems: list[str], query: dict[str, list[str]], snap: str | None
    ) -> Any:
        """``GET /entity|attribute|aggregate/S:T/<filters>/(C)=(S2:T2:C2)/<filters>...[/<projection>]
        [@sort(RID)][@after(R)]?limit=N`` (data/naming.md): filters in ERMrest's filter language (``=``,
        ``::lt::``, ``::leq::``, ``::gt::``, ``::geq::``, ``::null::``, ``&``, ``;``, ``!``, parentheses),
        links by explicit column mapping, distinct entities of the last table; ``/aggregate/`` answers
        ``cnt:=cnt(*)`` / ``cnt:=cnt_d(RID)`` as ``[{"cnt": n}]``. Measured on the lab (2026-11-30)."""
        from deriva_ml.core.filters import And, PathQuery, Step

        elems = list(elems)
        last = elems[-1]
        sort: list[str] = []
        after: str | None = None
        if "@" in last:
            last, *mods = last.split("@")
            for m in mods:
                name, _, arg = m.partition("(")
                arg = arg[:-1] if arg.endswith(")") else arg
                if name == "sort":
                    sort = [unquote(c) for c in arg.split(",")]
                elif name == "after":
                    after = unquote(arg)
                else:
                    raise _BadRequest(f"fake supports @sort and @after only, not @{name}")
            elems[-1] = last
            if not last:
                elems = elems[:-1]
        if after is not None and not sort:
            raise _BadRequest("Page key requires a sort modifier.")
        if sort not in ([], ["RID"]):
            raise ValidationError("fake sorts paths by RID only")
        projection: list[str] | None = None
        aggregate = None
        if api == "aggregate":
            aggregate = unquote(elems.pop())
            if aggregate not in ("cnt:=cnt(*)", "cnt:=cnt_d(RID)"):
                raise ValidationError(f"fake supports cnt:=cnt(*) and cnt:=cnt_d(RID) only: {aggregate}")
        elif api == "attribute":
            projection = [unquote(c) for c in elems.pop().split(",")]
        schema, _, table = elems[0].partition(":")
        steps: list[dict[str, Any]] = [
            {"schema": unquote(schema), "table": unquote(table), "filters": [], "via": None, "target": None}
        ]
        tdefs = [cat.table(steps[0]["schema"], steps[0]["table"], snap)]
        for el in elems[1:]:
            m = _LINK.match(el)
            if m:
                via = unquote(m.group(1))
                ts, tt, tc = (unquote(x) for x in m.group(2).split(":"))
                _column(tdefs[-1], via)
                tdefs.append(cat.table(ts, tt, snap))
                _column(tdefs[-1], tc)
                steps.append({"schema": ts, "table": tt, "filters": [], "via": via, "target": tc})
            else:
                steps[-1]["filters"].append(_FilterParser(el, tdefs[-1]).parse())
        for c in projection or ():
            _column(tdefs[-1], c)
        if projection is not None:
            for c in sort:
                if c not in projection:
                    raise _BadRequest(f'Sort key "{c}" not among output columns.')
        raw_limit = query.get("limit", [str(DEFAULT_LIMIT)])[0]
        limit = None if raw_limit.lower() == "none" else int(raw_limit)
        pq = PathQuery(
            tuple(
                Step(
                    s["schema"],
                    s["table"],
                    None if not s["filters"] else s["filters"][0] if len(s["filters"]) == 1 else And(s["filters"]),
                    s["via"],
                    s["target"],
                )
                for s in steps
            ),
            columns=tuple(projection) if projection else None,
            after=after,
            limit=None if aggregate else limit,
        )
        seq = cat.at(snap)[0]
        if aggregate:
            return [{"cnt": cat.store.count_path(pq, snapshot=seq)}]
        return rows_at(tdefs[-1], cat.store.select_path(pq, snapshot=seq))

    def _linked(
        self,
        cat: _Catalog,
        schema: str,
        table: str,
        segs: list[str],
        links: list[int],
        project: list[str] | None,
        sort: list[str],
        limit: int | None,
        snap: str | None,
    ) -> list[Any]:
        """``GET /entity/S:T/<filters>/(C)=(S2:T2:C2)`` (or ``/attribute/.../<projection>``): naming.md "Linkage
        by Explicit Column Mapping". The left column resolves in the parent path's table, the right one is
        ``schema:table:column`` of a catalog table; the inner join denotes the entities of the right-most
        table, distinct ("joins ... may be used to filter out rows but do not cause duplicate rows").

        The subset here: one link, one column on each side, an inner join, filters before the link only,
        sorted by RID (or unsorted).
        """
        if len(links) != 1 or links[0] != len(segs) - 1:
            raise ValidationError("fake supports one link element, last in the path (filters before it)")
        left, sep, right = segs[-1].partition(")=(")
        if not sep or not left.startswith("(") or not right.endswith(")"):
            raise ValidationError(f"fake supports only an inner join by explicit column mapping: {segs[-1]}")
        via = [unquote(c) for c in left[1:].split(",")]
        target = [unquote(p) for p in right[:-1].split(":")]
        if len(via) != 1 or len(target) != 3 or "," in right:
            raise ValidationError("fake supports one column on each side, the right one as schema:table:column")
        src, dst = cat.table(schema, table, snap), cat.table(target[0], target[1], snap)
        for t, c in ((src, via[0]), (dst, target[2]), *((dst, c) for c in project or ())):
            _column(t, c)
        if project is not None:
            for c in sort:
                if c not in project:
                    raise _BadRequest(f'Sort key "{c}" not among output columns.')
        if sort not in ([], ["RID"]):
            raise ValidationError("fake sorts linked paths by RID only")
        types = {c.name: c.type for c in src.columns}
        cond: dict[str, Any] = {}
        for col, vals in self._filters(segs[:-1]):
            _column(src, col)
            conv = [_typed(types.get(col, "text"), v) for v in vals]
            cond[col] = conv if len(conv) > 1 else conv[0]
        return rows_at(
            dst,
            cat.store.query_linked(
                schema,
                table,
                cond,
                via=via[0],
                target_schema=target[0],
                target_table=target[1],
                target_column=target[2],
                columns=project,
                limit=limit,
                snapshot=cat.at(snap)[0],
            ),
        )

    def _filters(self, segs: list[str]) -> list[tuple[str, list[Any]]]:
        where = []
        for seg in segs:
            col = None
            values: list[Any] = []
            for term in seg.split(";"):
                if term.endswith("::null::"):
                    c, v = unquote(term[: -len("::null::")]), None
                else:
                    c, _, raw = term.partition("=")
                    c, v = unquote(c), unquote(raw)
                if col is not None and c != col:
                    raise ValidationError("fake supports disjunction over one column only")
                col = c
                values.append(v)
            assert col is not None
            where.append((col, values))
        return where

    def _select(
        self,
        cat: _Catalog,
        schema: str,
        table: str,
        where: list[tuple[str, list[Any]]],
        project: list[str] | None,
        sort: list[str],
        limit: int | None,
        snap: str | None,
    ) -> list[Any]:
        tdef = cat.table(schema, table, snap)
        types = {c.name: c.type for c in tdef.columns}
        cond: dict[str, Any] = {}
        for col, vals in where:
            conv = [_typed(types.get(col, "text"), v) for v in vals]
            cond[col] = conv if len(conv) > 1 else conv[0]
        return rows_at(
            tdef,
            cat.store.query(
                schema,
                table,
                cond,
                columns=project,
                order_by=[c for c in sort if c != "RID"],
                limit=limit,
                snapshot=cat.at(snap)[0],
            ),
        )

    def _insert(
        self, cat: _Catalog, schema: str, table: str, query: dict[str, list[str]], rows: Any
    ) -> tuple[int, Any]:
        """``POST /entity/S:T[?defaults=..][&nondefaults=..][&onconflict=skip]`` as ERMrest does it.

        - system columns are always defaulted (their input values ignored) unless named in ``nondefaults``;
        - columns in ``defaults`` get the server default, their input values ignored;
        - any other column absent from a JSON row is stored as NULL (not as its default);
        - keys of the body that are not columns are ignored;
        - "Entity insertion requires at least one non-defaulting column." (409) when all are defaulted;
        - rows sharing the values of the union of the non-defaulted key columns: 400, even with skip;
        - ``onconflict=skip``: rows colliding with stored rows are skipped and absent from the response.
        """
        tdef = cat.table(schema, table)
        split = lambda k: {unquote(c) for c in ",".join(query.get(k, [""])).split(",") if c}  # noqa: E731
        nondefaults = split("nondefaults")
        defaults = (split("defaults") | set(SYSTEM_COLUMNS)) - nondefaults
        onconflict = query.get("onconflict", ["abort"])[0].lower()
        if onconflict not in ("skip", "abort"):
            return 400, f'Unknown action name in query parameter onconflict="{onconflict}".'
        columns = [c.name for c in tdef.columns]
        writable = [c for c in columns if c not in defaults]
        if not writable:
            return (
                409,
                "409 Conflict\nThe request conflicts with the state of the server. Entity insertion requires at least one non-defaulting column.\n",
            )
        clean = [{c: r.get(c) for c in writable} for r in rows]
        _check_values(tdef, clean)
        mkcols = sorted({c for k in tdef.keys for c in k.columns if c in writable})
        if mkcols:
            seen = set()
            for r in clean:
                if all(r[c] is not None for c in mkcols):
                    sig = tuple(json.dumps(r[c], sort_keys=True) for c in mkcols)
                    if sig in seen:
                        return (
                            400,
                            "400 Bad Request\nThe request is malformed. Multiple input rows share the same unique key information.\n",
                        )
                    seen.add(sig)
        skip = onconflict == "skip"
        res = cat.store.apply(Batch([Insert(schema, table, clean, on_conflict_skip=skip)]))
        out = [dict(r) for r in res.inserted[0]]
        for r in out:
            cat.rid_tables[r["RID"]] = (schema, table)
        return 200, out

    def _update(self, cat: _Catalog, schema: str, table: str, spec: str, rows: Any) -> tuple[int, Any]:
        """``PUT /attributegroup/S:T/K1,K2;C1,C2`` (data/rest.md "Attribute Group Update", "... with Renaming").

        Each item may be ``alias:=column`` (the input names the value ``alias``). Like the real server
        (measured on ERMrest): an input row whose keys match no stored row is skipped (200, left out of the
        response), so ``RID,old:=Status;Status`` is a compare-and-set. Rows sharing a key: 400; the response
        lists the input rows that updated a stored row (measured: 200 ``[]`` for a missing key, although
        data/rest.md says unmatched rows "will cause an error").
        """
        keys, _, targets = spec.partition(";")

        def named(item: str) -> tuple[str, str]:
            alias, sep, column = unquote(item).partition(":=")
            return (alias, column) if sep else (alias, alias)

        key = [named(k) for k in keys.split(",")]
        cols = [named(c) for c in targets.split(",") if c]
        if not cols:
            return 400, "Grouped attribute update requires at least one target attribute."
        names = [a for a, _ in (*key, *cols)]
        twice = sorted({a for a in names if names.count(a) > 1})
        if twice:
            return 400, f"Update column {twice[0]} cannot be bound more than once."
        seen = set()
        for r in rows:
            sig = tuple(json.dumps(r.get(a), sort_keys=True) for a, _ in key)
            if sig in seen:
                return (
                    400,
                    "400 Bad Request\nThe request is malformed. Multiple input rows share the same unique key information.\n",
                )
            seen.add(sig)
        tdef = cat.table(schema, table)
        for _, c in (*key, *cols):
            _column(tdef, c)
        _check_values(tdef, [{c: r.get(a) for a, c in cols} for r in rows])
        updates, out = [], []
        for r in rows:
            hits = cat.store.query(schema, table, {c: r.get(a) for a, c in key}, columns=["RID"])
            for hit in hits:
                updates.append({"RID": hit["RID"], **{c: r.get(a) for a, c in cols}})
            if hits:
                out.append({a: r.get(a) for a, _ in (*key, *cols)})
        if updates:
            cat.store.apply(Batch([Update(schema, table, updates)]))
        return 200, out

    def _ddl(self, cat: _Catalog, doc: Any) -> tuple[int, Any]:
        tables = []
        for item in doc:
            if "table_name" in item:
                tables.append(item)
            else:
                if item["schema_name"] in cat.docs:
                    return 409, f"schema {item['schema_name']} exists"
                cat.docs[item["schema_name"]] = {**item, "tables": {}}
                cat.ddl += 1
                cat.created[(item["schema_name"],)] = cat.ddl
        cat.store.create_tables([table_from_document(t) for t in tables])
        cat.ddl += 1
        for t in tables:
            cat.created[(t["schema_name"], t["table_name"])] = cat.ddl
            cat.docs.setdefault(t["schema_name"], {"schema_name": t["schema_name"], "tables": {}})
            cat.docs[t["schema_name"]]["tables"][t["table_name"]] = t
        return 201, doc


def _typed(coltype: str, value: Any) -> Any:
    """A URL literal as a value of ``coltype`` (400 "Invalid int4: ..." as ERMrest answers otherwise)."""
    if value is None:
        return None
    try:
        if coltype in ("int2", "int4", "int8"):
            return int(value)
        if coltype in ("float4", "float8"):
            return float(value)
    except ValueError:
        raise _BadRequest(f'Invalid {coltype}: "{value}"') from None
    if coltype == "boolean":
        if value not in ("true", "false", "t", "f"):
            raise _BadRequest(f'Invalid boolean: "{value}"')
        return value in ("true", "t")
    return value


def _column(t: Any, name: str) -> None:
    """409 as ERMrest (model/table.py) for a column the table does not have."""
    if name not in t.column_names and name not in SYSTEM_COLUMNS:
        raise _Conflict(f"Requested column {name} does not exist in table {t.name}.")


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "int2": (int,),
    "int4": (int,),
    "int8": (int,),
    "float4": (int, float),
    "float8": (int, float),
    "boolean": (bool,),
    "text": (str,),
    "markdown": (str,),
    "date": (str,),
    "timestamptz": (str,),
    "ermrest_rid": (str,),
}


def _check_values(t: Any, rows: list[dict[str, Any]]) -> None:
    """Rows as PostgreSQL takes them from ERMrest's JSON input: a null in a NOT NULL column is 409
    ("violates not-null constraint"), a value of the wrong type 400 ("invalid input syntax")."""
    cols = {c.name: c for c in t.columns}
    for r in rows:
        for name, v in r.items():
            c = cols.get(name)
            if c is None:
                continue
            if v is None:
                if not c.nullok:
                    raise _Conflict(
                        f'null value in column "{name}" of relation "{t.name}" violates not-null constraint'
                    )
                continue
            want = _JSON_TYPES.get(c.type)
            ok = (
                isinstance(v, want) and (c.type == "boolean" or not isinstance(v, bool))
                if want is not None
                else c.type != "text[]" or (isinstance(v, list) and all(isinstance(x, str | None) for x in v))
            )
            if not ok:
                raise _BadRequest(f"Bad JSON array input. ERROR:  invalid input syntax for type {c.type}: {v!r}")


# --- data (branch data): the filter language parser of the path handler

import re as _re  # noqa: E402

_LINK = _re.compile(r"^\(([^()=;&!:]+)\)=\(([^()=;&!:]+:[^()=;&!:]+:[^()=;&!:]+)\)$")
_ADVANCED = ("::lt::", "::leq::", "::gt::", "::geq::", "&", "!", "(")


def _advanced(elems: list[str]) -> bool:
    """Whether a path needs the path handler: paging, a filter operator beyond ``=``/``::null::``/``;``,
    several links, or a filter after a link."""
    if any("@after(" in e for e in elems):
        return True
    links = [i for i, e in enumerate(elems) if _LINK.match(e.split("@", 1)[0])]
    if len(links) > 1:
        return True
    if links and any((not e.startswith("@") and "=" in e) or "::" in e for e in elems[links[0] + 1 :]):
        return True
    for e in elems[1:]:
        e = e.split("@", 1)[0]
        if _LINK.match(e):
            continue
        if any(tok in e for tok in _ADVANCED):
            return True
        if len({_re.split(r"=|::", t, maxsplit=1)[0] for t in e.split(";")}) > 1:
            return True  # a disjunction over several columns
    return False


class _FilterParser:
    """Recursive descent over one filter path element: disj := conj (';' conj)*, conj := unary ('&' unary)*,
    unary := '!' unary | '(' disj ')' | pred, pred := name ('=' v | '::op::' v | '::null::')."""

    _OPS = {"lt": "lt", "leq": "leq", "gt": "gt", "geq": "geq"}

    def __init__(self, text: str, tdef: Any) -> None:
        self.text = text
        self.i = 0
        self.tdef = tdef
        self.types = {c.name: c.type for c in tdef.columns}

    def parse(self) -> Any:
        f = self._disj()
        if self.i != len(self.text):
            raise _BadRequest(f"Invalid filter syntax at {self.text[self.i :]!r}")
        return f

    def _peek(self) -> str:
        return self.text[self.i] if self.i < len(self.text) else ""

    def _disj(self) -> Any:
        from deriva_ml.core.filters import Or

        parts = [self._conj()]
        while self._peek() == ";":
            self.i += 1
            parts.append(self._conj())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def _conj(self) -> Any:
        from deriva_ml.core.filters import And

        parts = [self._unary()]
        while self._peek() == "&":
            self.i += 1
            parts.append(self._unary())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def _unary(self) -> Any:
        from deriva_ml.core.filters import Not

        if self._peek() == "!":
            self.i += 1
            return Not(self._unary())
        if self._peek() == "(":
            self.i += 1
            f = self._disj()
            if self._peek() != ")":
                raise _BadRequest(f"Invalid filter syntax: unbalanced parenthesis in {self.text!r}")
            self.i += 1
            return f
        return self._pred()

    def _pred(self) -> Any:
        from deriva_ml.core.filters import Cmp

        m = _re.compile(r"([^=;&!():]+)(?:=([^;&!()]*)|::(null|lt|leq|gt|geq)::([^;&!()]*))").match(self.text, self.i)
        if not m:
            raise _BadRequest(f"Invalid filter syntax at {self.text[self.i :]!r}")
        self.i = m.end()
        name = unquote(m.group(1))
        _column(self.tdef, name)
        kind = self.types.get(name, "text")
        if m.group(3) is None:
            return Cmp(name, "eq", _typed(kind, unquote(m.group(2))))
        if m.group(3) == "null":
            if m.group(4):
                raise _BadRequest(f"Invalid filter syntax: ::null:: takes no value ({self.text!r})")
            return Cmp(name, "null")
        return Cmp(name, self._OPS[m.group(3)], _typed(kind, unquote(m.group(4))))


_TEMPLATES: dict[str, tuple[FakeErmrest, str]] = {}
_TEMPLATES_LOCK = threading.Lock()


def new_ml_catalog(server: FakeErmrest, project: str) -> str:
    """A new deriva-ml catalog with the empty domain schema ``project`` on ``server``; returns its id.

    The catalog is a copy of one that ``create_ml_catalog`` made, once per process and project, on a private
    fake: the same state its requests would make here, without repeating them for every test (they are not in
    ``server.log``). Tests of catalog creation itself call ``create_ml_catalog``.
    """
    with _TEMPLATES_LOCK:
        if project not in _TEMPLATES:
            from deriva_ml.catalog.ermrest import create_ml_catalog

            origin = FakeErmrest().__enter__()
            atexit.register(origin.__exit__, None, None, None)
            made = create_ml_catalog(origin.host, project, scheme="http", credential={})
            made.close()
            _TEMPLATES[project] = (origin, made.catalog_id)
        origin, cid = _TEMPLATES[project]
    return server.add_copy(origin.catalogs[cid])
