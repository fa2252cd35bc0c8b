"""A small, real Hatrac protocol server on 127.0.0.1 for tests.

Implements the subset of Hatrac's documented REST API (informatics-isi-edu/hatrac ``docs/REST-API.md``)
that deriva_ml uses, with the documented status codes:

- namespaces: ``PUT`` with ``Content-Type: application/x-hatrac-namespace`` (``?parents=true``
  creates ancestors; 404 missing parent; 409 exists / parent is an object), ``GET``/``HEAD`` listing;
- objects: ``PUT`` (``Content-MD5`` checked → 400; ``Content-Length`` required → 411; 404 missing
  parent namespace unless ``?parents=true``; 409 name is a namespace; 412 when ``If-None-Match: *``
  meets a current version or ``If-Match`` another ETag; a PUT to an existing object otherwise adds a
  version), ``GET``/``HEAD`` with
  ``Content-MD5``/``Content-Length``/``Content-Disposition``/``Content-Location``, ``DELETE``;
- upload jobs: ``POST obj;upload`` (JSON ``chunk-length``/``content-length``/metadata → 201 + Location),
  ``PUT obj;upload/<job>/<n>`` (204; 409 wrong size / out of range; 404 unknown job), ``GET`` job
  status (JSON, no chunk list — as documented), ``POST`` finalize (409 missing chunks or MD5 mismatch),
  ``DELETE`` cancel.

Where the real server (Hatrac on Apache, file-system backend) differs from the documentation, the fake
follows the real server (each measured with raw requests; see ``docs/object-stores.md``, "Hatrac
contract"): an object name whose last segment plus ``:<26-char version>`` exceeds 255 bytes gets a 500
``[Errno 36] File name too long`` (on ``PUT`` and on ``POST ;upload``); a ``HEAD`` of a 0-byte object
has no ``Content-Length``; a deleted name can never be created again (``PUT``/``POST ;upload`` → 409,
``GET``/``HEAD`` → 404); ``Content-MD5`` in hex is accepted like base64; finalising a job with chunks
missing is accepted (missing chunks read as zero bytes) and only the MD5, when given, is checked
(mismatch → 409); ``GET``/``HEAD`` of ``<name>:<version>`` read that version (404 if unknown);
without a stored ``Content-Disposition`` the object's own name is reported as its file name.

Everything is stored in memory. Every request is recorded as ``(method, raw path)`` so tests can
count round trips, and faults can be injected per method + path regex: an HTTP status, a dropped
connection part-way through the request body, or a delay before the answer (to trip client timeouts).

Usage::

    with HatracTestServer() as server:
        store = make_store(server)
        ...
        assert server.count("PUT", r";upload/.*/0$") == 1

The ``hatrac_server`` pytest fixture (``tests/store/conftest.py``) yields a started server.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import json
import os
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote

NAMESPACE_CT = "application/x-hatrac-namespace"


@dataclass
class Fault:
    """Affect requests whose method matches (``None``: any) and whose raw path matches ``pattern``.

    The first ``skip`` matching requests pass untouched; the next ``times`` (``None``: all) get the
    fault. ``action`` is ``"status"`` (answer ``status``), ``"drop"`` (read ``drop_after`` body bytes,
    default half, then close the connection without answering) or ``"delay"`` (sleep ``seconds``, then
    handle the request normally).
    """

    method: str | None
    pattern: re.Pattern[str]
    action: str
    status: int = 500
    seconds: float = 0.0
    drop_after: int | None = None
    skip: int = 0
    times: int | None = 1
    message: str | None = None
    seen: int = 0
    applied: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and bool(self.pattern.search(path))


@dataclass
class Version:
    data: bytes
    metadata: dict[str, str]
    version: str


@dataclass
class Job:
    target: str  # decoded object name
    target_raw: str
    chunk_length: int
    content_length: int
    metadata: dict[str, str]
    chunks: dict[int, bytes] = field(default_factory=dict)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _dispatch(self) -> None:
        try:
            self.server.app.handle(self)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _dispatch


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    app: HatracTestServer


class HatracTestServer:
    """An in-memory Hatrac on ``http://127.0.0.1:<port>`` (see module docstring)."""

    def __init__(self, prefix: str = "/hatrac") -> None:
        self.prefix = prefix
        self.lock = threading.RLock()
        self.namespaces: set[str] = {prefix}
        self.objects: dict[str, list[Version]] = {}
        self.deleted: set[str] = set()  # names that can never be created again
        self.jobs: dict[str, Job] = {}
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> HatracTestServer:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.app = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), name="hatrac-test", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> HatracTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # -- test controls ----------------------------------------------------------------------------
    def _add(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def fail(
        self,
        method: str | None,
        pattern: str,
        status: int = 500,
        *,
        skip: int = 0,
        times: int | None = 1,
        message: str | None = None,
    ) -> Fault:
        """Answer ``status`` (body ``message``) to matching requests (e.g. the Nth: ``skip=N-1, times=1``)."""
        return self._add(
            Fault(method, re.compile(pattern), "status", status=status, skip=skip, times=times, message=message)
        )

    def drop(
        self,
        method: str | None,
        pattern: str,
        *,
        after: int | None = None,
        skip: int = 0,
        times: int | None = 1,
    ) -> Fault:
        """Close the connection after reading ``after`` body bytes (default: half) without answering.

        For ``GET`` the answer's headers and half of its body are sent, then the connection closes.
        """
        return self._add(Fault(method, re.compile(pattern), "drop", drop_after=after, skip=skip, times=times))

    def delay(self, method: str | None, pattern: str, seconds: float, *, skip: int = 0, times: int | None = 1) -> Fault:
        """Sleep ``seconds`` before handling matching requests (to exceed a client's read timeout)."""
        return self._add(Fault(method, re.compile(pattern), "delay", seconds=seconds, skip=skip, times=times))

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def reset_counts(self) -> None:
        with self.lock:
            self.requests.clear()

    def count(self, method: str | None = None, pattern: str | None = None) -> int:
        """How many requests had this method (``None``: any) and a raw path matching ``pattern``."""
        rx = re.compile(pattern) if pattern is not None else None
        with self.lock:
            return sum(
                1 for r in self.requests if (method is None or r.method == method) and (rx is None or rx.search(r.path))
            )

    def calls(self) -> list[tuple[str, str]]:
        """All requests so far as ``(method, raw path)``."""
        with self.lock:
            return [(r.method, r.path) for r in self.requests]

    def object_bytes(self, path: str) -> bytes | None:
        """Current bytes of the object at (raw or decoded) ``path``."""
        with self.lock:
            versions = self.objects.get(unquote(path))
            return versions[-1].data if versions else None

    def corrupt(self, path: str, data: bytes) -> None:
        """Replace the current version's bytes, keeping its recorded ``Content-MD5`` (bit rot)."""
        with self.lock:
            self.objects[unquote(path)][-1].data = data

    # -- HTTP plumbing ----------------------------------------------------------------------------
    @staticmethod
    def _send(
        h: _Handler,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        content_type: str = "text/plain",
        omit_length: bool = False,
    ) -> None:
        h.send_response(status)
        all_headers = {"Content-Type": content_type, **(headers or {})}
        if omit_length:
            all_headers.pop("Content-Length", None)
        elif "Content-Length" not in all_headers:
            all_headers["Content-Length"] = str(len(body))
        for k, v in all_headers.items():
            h.send_header(k, v)
        h.end_headers()
        if h.command != "HEAD" and body:
            h.wfile.write(body)
        h.wfile.flush()

    def _error(self, h: _Handler, status: int, message: str) -> None:
        self._send(h, status, (message + "\n").encode())

    @staticmethod
    def _read_body(h: _Handler) -> bytes | None:
        length = h.headers.get("Content-Length")
        if length is None:
            return None
        return h.rfile.read(int(length)) if int(length) else b""

    def _fault_for(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if not fault.matches(method, path):
                    continue
                fault.seen += 1
                if fault.seen <= fault.skip:
                    continue
                if fault.times is not None and fault.applied >= fault.times:
                    continue
                fault.applied += 1
                return fault
        return None

    def handle(self, h: _Handler) -> None:
        method, raw = h.command, h.path
        with self.lock:
            self.requests.append(Recorded(method, raw, {k.lower(): v for k, v in h.headers.items()}))
        fault = self._fault_for(method, raw)
        if fault is not None:
            if fault.action == "status":
                self._read_body(h)
                self._error(h, fault.status, fault.message or f"injected fault {fault.status}")
                return
            if fault.action == "drop":
                self._drop(h, fault)
                return
            if fault.action == "delay":
                time.sleep(fault.seconds)
        self._route(h, method, raw)

    def _drop(self, h: _Handler, fault: Fault) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        if h.command == "GET":
            path = h.path.partition("?")[0]
            data = self.object_bytes(path) or b"x" * 64
            h.send_response(200)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data[: fault.drop_after if fault.drop_after is not None else len(data) // 2])
            h.wfile.flush()
        else:
            h.rfile.read(min(length, fault.drop_after if fault.drop_after is not None else length // 2))
        h.close_connection = True
        with contextlib.suppress(OSError):
            h.connection.shutdown(socket.SHUT_RDWR)

    # -- Hatrac semantics -------------------------------------------------------------------------
    def _parent(self, name: str) -> str:
        return name.rsplit("/", 1)[0]

    def _check_parent(self, h: _Handler, name: str, parents: bool) -> bool:
        """Ensure ``name``'s parent namespace exists (creating it with ``parents``); answer on failure."""
        parent = self._parent(name)
        if parent in self.objects:
            self._error(h, 409, f"Parent {parent} is not a namespace.")
            return False
        if parent not in self.namespaces:
            if not parents or not parent.startswith(self.prefix):
                self._error(h, 404, f"Parent namespace {parent} not found.")
                return False
            chain = []
            p = parent
            while p not in self.namespaces and p.startswith(self.prefix):
                if p in self.objects:
                    self._error(h, 409, f"Ancestor {p} is not a namespace.")
                    return False
                chain.append(p)
                p = self._parent(p)
            self.namespaces.update(chain)
        return True

    def _object_headers(self, raw_name: str, v: Version) -> dict[str, str]:
        headers = {
            "Content-Length": str(len(v.data)),
            "Content-Location": f"{raw_name}:{v.version}",
            "ETag": f'"{v.version}"',
            "Accept-Ranges": "bytes",
        }
        for key, header in (
            ("content-md5", "Content-MD5"),
            ("content-disposition", "Content-Disposition"),
        ):
            if key in v.metadata:
                headers[header] = v.metadata[key]
        headers.setdefault("Content-Disposition", "filename*=UTF-8''" + raw_name.rsplit("/", 1)[-1])
        return headers

    def _new_version(self, name: str, data: bytes, metadata: dict[str, str]) -> Version:
        v = Version(data=data, metadata=metadata, version=base64.b32encode(uuid.uuid4().bytes).decode().rstrip("="))
        self.objects.setdefault(name, []).append(v)
        return v

    @staticmethod
    def _md5_b64(header: str) -> str:
        """The real server accepts ``Content-MD5`` in hex too (and reports it in base64)."""
        value = header.strip()
        if re.fullmatch(r"[0-9a-fA-F]{32}", value):
            return base64.b64encode(bytes.fromhex(value)).decode()
        return value

    @classmethod
    def _md5_ok(cls, data: bytes, header: str | None) -> bool:
        if header is None:
            return True
        return base64.b64encode(hashlib.md5(data).digest()).decode() == cls._md5_b64(header)

    @staticmethod
    def _too_long(name_raw: str) -> bool:
        """The file-system backend stores ``<last segment as sent (encoded)>:<26-char version>`` as one file."""
        return len(name_raw.rsplit("/", 1)[-1]) + 27 > 255

    def _name_too_long(self, h: _Handler, name: str) -> None:
        self._error(h, 500, f"[Errno 36] File name too long: '/var/www{name}:XXXXXXXXXXXXXXXXXXXXXXXXXX'")

    def _route(self, h: _Handler, method: str, raw: str) -> None:
        path_raw, _, query = raw.partition("?")
        parents = parse_qs(query).get("parents", ["false"])[0].lower() == "true"
        name_raw, _, sub = path_raw.partition(";")
        version: str | None = None
        last = name_raw.rsplit("/", 1)[-1]
        if ":" in last and not sub:  # <name>:<version> (a literal ':' in a name is sent as %3A)
            name_raw, _, version = name_raw.rpartition(":")
        name = unquote(name_raw).rstrip("/") or "/"
        if not name.startswith(self.prefix):
            self._read_body(h)
            self._error(h, 404, f"{name} is outside {self.prefix}")
            return
        with self.lock:
            if version is not None:
                self._route_version(h, method, name, name_raw, version)
            elif not sub:
                self._route_name(h, method, name, name_raw, parents)
            elif sub == "upload":
                self._route_jobs(h, method, name, name_raw, parents)
            elif sub.startswith("upload/"):
                parts = sub.split("/")
                job_key = f"{name}|{parts[1]}"
                if len(parts) == 2:
                    self._route_job(h, method, job_key, name, name_raw)
                elif len(parts) == 3:
                    self._route_chunk(h, method, job_key, parts[2])
                else:
                    self._error(h, 400, "bad upload sub-resource")
            else:
                self._read_body(h)
                self._error(h, 400, f"unsupported sub-resource ;{sub}")

    def _send_version(self, h: _Handler, name_raw: str, v: Version) -> None:
        self._send(
            h,
            200,
            v.data,
            self._object_headers(name_raw, v),
            v.metadata.get("content-type", ""),
            omit_length=h.command == "HEAD" and not v.data,  # the real server sends none for 0 bytes
        )

    def _route_version(self, h: _Handler, method: str, name: str, name_raw: str, version: str) -> None:
        self._read_body(h)
        if method not in ("GET", "HEAD"):
            self._error(h, 405, f"{method} not supported on a version here")
            return
        for v in self.objects.get(name, []):
            if v.version == version:
                self._send_version(h, name_raw, v)
                return
        self._error(h, 404, f"Resource {name}:{version} not found.")

    def _route_name(self, h: _Handler, method: str, name: str, name_raw: str, parents: bool) -> None:
        if method in ("GET", "HEAD"):
            if name in self.objects:
                versions = self.objects[name]
                if not versions:
                    self._error(h, 409, f"Object {name} currently has no content.")
                    return
                self._send_version(h, name_raw, versions[-1])
            elif name in self.namespaces:
                children = sorted(
                    n for n in (self.namespaces | set(self.objects)) if self._parent(n) == name and n != name
                )
                self._send(h, 200, json.dumps(children).encode(), content_type="application/json")
            else:
                self._error(h, 404, f"Resource {name} not found.")
            return
        if method == "PUT":
            content_type = h.headers.get("Content-Type", "")
            data = self._read_body(h)
            if name not in self.objects and content_type == NAMESPACE_CT:
                if name in self.namespaces:
                    self._error(h, 409, f"Namespace {name} already exists.")
                    return
                if not self._check_parent(h, name, parents):
                    return
                self.namespaces.add(name)
                self._send(h, 201, (name_raw + "\n").encode(), {"Location": name_raw}, "text/uri-list")
                return
            if name in self.namespaces:
                self._error(h, 409, f"Name {name} is a namespace.")
                return
            if name in self.deleted:
                self._error(h, 409, f"Name {name} not available.")
                return
            if name not in self.objects and not self._check_parent(h, name, parents):
                return
            current = self.objects.get(name) or []
            # REST-API.md: "An `*` with the `If-None-Match` header requires that the object lack a current
            # version"; "An _etag value_ with the `If-Match` header requires that the current version ...
            # match" -- otherwise 412 Precondition Failed.
            if h.headers.get("If-None-Match", "").strip() == "*" and current:
                self._error(h, 412, f"Object {name} already has a current version.")
                return
            if_match = h.headers.get("If-Match")
            if if_match is not None and (not current or if_match.strip() != f'"{current[-1].version}"'):
                self._error(h, 412, f"Object {name} does not match {if_match}.")
                return
            if data is None:
                self._error(h, 411, "Content-Length required.")
                return
            if not self._md5_ok(data, h.headers.get("Content-MD5")):
                self._error(h, 400, "Content-MD5 does not match the content received.")
                return
            if self._too_long(name_raw):
                self._name_too_long(h, name)
                return
            metadata = {"content-type": content_type or "application/octet-stream"}
            if h.headers.get("Content-MD5"):
                metadata["content-md5"] = self._md5_b64(h.headers["Content-MD5"])
            if h.headers.get("Content-Disposition"):
                metadata["content-disposition"] = h.headers["Content-Disposition"].strip()
            v = self._new_version(name, data, metadata)
            loc = f"{name_raw}:{v.version}"
            self._send(h, 201, (loc + "\n").encode(), {"Location": loc}, "text/uri-list")
            return
        if method == "DELETE":
            if name in self.objects:
                del self.objects[name]
                self.deleted.add(name)
            elif name in self.namespaces and name != self.prefix:
                if any(self._parent(n) == name for n in self.namespaces | set(self.objects)):
                    self._error(h, 409, f"Namespace {name} is not empty.")
                    return
                self.namespaces.discard(name)
            else:
                self._error(h, 404, f"Resource {name} not found.")
                return
            self._send(h, 204)
            return
        self._read_body(h)
        self._error(h, 405, f"{method} not allowed on {name}")

    def _route_jobs(self, h: _Handler, method: str, name: str, name_raw: str, parents: bool) -> None:
        if method == "GET":
            jobs = [f"{j.target_raw};upload/{k.split('|')[1]}" for k, j in self.jobs.items() if j.target == name]
            self._send(h, 200, json.dumps(jobs).encode(), content_type="application/json")
            return
        if method != "POST":
            self._read_body(h)
            self._error(h, 405, f"{method} not allowed on {name};upload")
            return
        body = self._read_body(h) or b""
        if h.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            self._error(h, 400, "Only application/json input is accepted for upload jobs.")
            return
        try:
            spec = json.loads(body.decode())
            chunk_length = int(spec.get("chunk-length", spec.get("chunk_bytes")))
            content_length = int(spec.get("content-length", spec.get("total_bytes")))
        except (ValueError, TypeError, AttributeError) as exc:
            self._error(h, 400, f"Bad job description: {exc}")
            return
        if chunk_length <= 0 or content_length < 0:
            self._error(h, 400, "chunk-length must be > 0 and content-length >= 0")
            return
        if name in self.namespaces or name in self.deleted:
            self._error(h, 409, f"Name {name} is not available for use.")
            return
        if name not in self.objects and not self._check_parent(h, name, parents):
            return
        if self._too_long(name_raw):
            self._name_too_long(h, name)
            return
        metadata = {
            k: str(spec[k])
            for k in ("content-type", "content-md5", "content-disposition", "content-sha256")
            if spec.get(k) is not None
        }
        if "content-md5" in metadata:
            metadata["content-md5"] = self._md5_b64(metadata["content-md5"])
        job_id = uuid.uuid4().hex
        self.objects.setdefault(name, [])  # the real server creates the name (no content yet) with the job
        self.jobs[f"{name}|{job_id}"] = Job(name, name_raw, chunk_length, content_length, metadata)
        loc = f"{name_raw};upload/{job_id}"
        self._send(h, 201, (loc + "\n").encode(), {"Location": loc}, "text/uri-list")

    def _route_job(self, h: _Handler, method: str, job_key: str, name: str, name_raw: str) -> None:
        self._read_body(h)
        job = self.jobs.get(job_key)
        if job is None:
            self._error(h, 404, f"Upload job {job_key} not found.")
            return
        job_url = f"{name_raw};upload/{job_key.split('|')[1]}"
        if method in ("GET", "HEAD"):
            info = {
                "url": job_url,
                "target": name_raw,
                "owner": ["test"],
                "chunk-length": job.chunk_length,
                "content-length": job.content_length,
                **job.metadata,
            }
            self._send(h, 200, json.dumps(info).encode(), content_type="application/json")
        elif method == "POST":
            # The real server does not track chunks: missing ones read as zero bytes (a sparse file)
            # and only the MD5, when the job has one, is checked.
            n = -(-job.content_length // job.chunk_length)
            data = b"".join(
                job.chunks.get(i, bytes(min(job.chunk_length, job.content_length - i * job.chunk_length)))
                for i in range(n)
            )
            if not self._md5_ok(data, job.metadata.get("content-md5")):
                self._error(h, 409, "Current uploaded content MD5 does not match expected.")
                return
            del self.jobs[job_key]
            v = self._new_version(name, data, dict(job.metadata))
            loc = f"{name_raw}:{v.version}"
            self._send(h, 201, (loc + "\n").encode(), {"Location": loc}, "text/uri-list")
        elif method == "DELETE":
            del self.jobs[job_key]
            self._send(h, 204)
        else:
            self._error(h, 405, f"{method} not allowed on an upload job")

    def _route_chunk(self, h: _Handler, method: str, job_key: str, chunk: str) -> None:
        if method != "PUT":
            self._read_body(h)
            self._error(h, 405, f"{method} not allowed on a chunk")
            return
        data = self._read_body(h)
        job = self.jobs.get(job_key)
        if job is None:
            self._error(h, 404, f"Upload job {job_key} not found.")
            return
        if data is None:
            self._error(h, 411, "Content-Length required.")
            return
        if not chunk.isdigit():
            self._error(h, 400, f"Invalid chunk number {chunk}.")
            return
        i = int(chunk)
        n = -(-job.content_length // job.chunk_length)
        expected = min(job.chunk_length, job.content_length - i * job.chunk_length)
        if i >= n:
            self._error(h, 409, f"Uploaded chunk number {i} out of range.")
            return
        if len(data) != expected:
            self._error(h, 409, f"Uploaded chunk byte count {len(data)} does not match {expected}.")
            return
        job.chunks[i] = data
        self._send(h, 204)


class SleepRecorder:
    """A ``sleep`` stand-in that records the delays instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def object_path(table: str, md5: str, filename: str) -> str:
    """The raw path deriva_ml uses for an object (mirrors ``deriva_ml.store.names.object_url``)."""
    return f"/hatrac/{quote(table, safe='')}/{md5}.{quote(filename, safe='')}"


def make_store(server: HatracTestServer, *, sleep: Any = None, **kwargs: Any) -> Any:
    """A ``HatracObjectStore`` talking to ``server`` with a plain session, no jitter and no sleeping.

    ``options`` defaults to small timeouts and ``retry_delay=0.5`` so that mistakes fail fast.
    """
    import requests

    from deriva_ml.store.hatrac import HatracObjectStore
    from deriva_ml.store.port import UploadOptions

    session = requests.Session()
    session.trust_env = False  # never route loopback through a proxy from the environment
    kwargs.setdefault("options", UploadOptions(timeout=(5.0, 10.0), max_retries=3, retry_delay=0.5))
    kwargs.setdefault("jitter", None)
    return HatracObjectStore(
        server.url, session=session, sleep=sleep if sleep is not None else SleepRecorder(), **kwargs
    )


def live_host() -> str | None:
    """``DERIVA_ML_TEST_HOST``: the live legs run only when it is set."""
    return os.environ.get("DERIVA_ML_TEST_HOST") or None


def live_credential() -> dict[str, str] | None:
    """The live host's credential from ``DERIVA_ML_TEST_CREDENTIAL_FILE`` (else ``None``: deriva-py's own)."""
    path = os.environ.get("DERIVA_ML_TEST_CREDENTIAL_FILE")
    host = live_host()
    if not path or not host:
        return None
    data = json.loads(Path(path).read_text())
    found = data.get(host, data) if isinstance(data, dict) else None
    return found if isinstance(found, dict) else None


def live_session() -> Any:
    """A ``requests.Session`` carrying the live credential (raw requests for the contract tests)."""
    import requests

    session = requests.Session()
    cred = live_credential() or {}
    if "bearer-token" in cred:
        session.headers["Authorization"] = f"Bearer {cred['bearer-token']}"
    elif "cookie" in cred:
        session.headers["Cookie"] = cred["cookie"]
    return session
