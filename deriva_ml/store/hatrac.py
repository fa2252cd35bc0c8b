"""An object store on a Hatrac server (the object service of a DERIVA deployment).

Speaks Hatrac's documented REST API (``docs/REST-API.md`` in informatics-isi-edu/hatrac):

- ``HEAD /hatrac/<T>/<obj>`` — does the object exist, with which ``Content-MD5`` and length;
- ``PUT /hatrac/<T>/<obj>`` with ``Content-MD5`` and ``If-None-Match: *`` — a whole object in one
  request (files no larger than one chunk); a 412 (the object got a version meanwhile) is checked
  with a ``HEAD`` and accepted only when that version has the same MD5;
- ``POST /hatrac/<T>/<obj>;upload`` (JSON job description) → job URL; ``PUT <job>/<i>`` per chunk;
  ``POST <job>`` to finalize; ``GET <job>`` for the job's status; ``DELETE <job>`` to cancel;
- ``PUT /hatrac/<T>?parents=true`` with ``Content-Type: application/x-hatrac-namespace`` — only after a
  404 says the namespace is missing;
- ``GET /hatrac/<T>/<obj>`` — streamed download, verified against ``Content-MD5``.

Hatrac does not report which chunks of a job it holds, so resumption is client-side: the job URL and
the finished chunk indices are kept in a small JSON state file (in ``state_dir``; in memory when no
``state_dir`` is given). A later ``put`` of the same file checks the job still exists
(``GET <job>``) and sends only the missing chunks.

Each request has its own timeout (``UploadOptions.timeout``) and is retried on connection errors,
timeouts and 408/429/5xx responses, up to ``UploadOptions.max_retries`` times, sleeping
:func:`deriva_ml.core.retry.backoff_delays` between attempts (the ``sleep`` function is injectable).
deriva-py's own urllib3 retries are switched off in the session this module builds, so the two
layers do not multiply (deriva-py's defaults sleep ~486 s on a dead server).

This module imports ``requests`` at import time and deriva-py lazily; ``import deriva_ml`` imports
neither.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from deriva_ml._log import get_logger as _get_logger
from deriva_ml.core.errors import ChecksumMismatch, ObjectNotFound, PermissionDenied, StoreError, UploadFailed
from deriva_ml.core.retry import backoff_delays
from deriva_ml.store._files import IO_CHUNK, md5_b64_to_hex, md5_file, md5_hex_to_b64, write_hashed
from deriva_ml.store.names import HATRAC_PREFIX, object_url, parse_object_url, validate_filename, validate_md5
from deriva_ml.store.port import ProgressCallback, StoredObject, UploadOptions

__all__ = [
    "NAMESPACE_CONTENT_TYPE",
    "RETRYABLE_STATUS",
    "SESSION_CONFIG",
    "HatracObjectStore",
    "uniform_jitter",
]

NAMESPACE_CONTENT_TYPE = "application/x-hatrac-namespace"
OBJECT_CONTENT_TYPE = "application/octet-stream"

#: Responses worth another attempt; everything else is final.
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})

#: Merged over deriva-py's ``DEFAULT_SESSION_CONFIG``: no urllib3-level retries (we retry ourselves,
#: with our own schedule and per-request timeouts).
SESSION_CONFIG: Mapping[str, Any] = {
    "retry_connect": 0,
    "retry_read": 0,
    "retry_backoff_factor": 0.0,
    "retry_status_forcelist": [],
}

#: Chunked uploads never use more chunks than this (deriva-py's ``max_chunk_limit``; S3's part limit);
#: the chunk size grows for larger files.
MAX_CHUNKS = 10_000

#: Our own errors (both are OSError subclasses, so ``except OSError`` must let them through).
_OURS = (StoreError, PermissionDenied)

_TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


def uniform_jitter(n: int) -> list[float]:
    """Default jitter: ``n`` fractions uniform in ``[-0.1, 0.1]`` (±10 % on each delay)."""
    return [random.uniform(-0.1, 0.1) for _ in range(n)]


def _content_disposition(filename: str) -> str:
    return "filename*=UTF-8''" + quote(filename, safe="")


def _split_base(hostname_or_server_url: str) -> tuple[str, str]:
    """``("https", "host[:port]")`` from ``"host"`` or ``"https://host[:port][/...]"``."""
    text = hostname_or_server_url.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise StoreError(f"server={hostname_or_server_url!r} is not a host name or http(s) URL")
    return parts.scheme, parts.netloc


def _path_of(location: str) -> str:
    """The path of a URL that may be absolute (``Location`` headers may be either)."""
    return urlsplit(location).path if "://" in location else location


class _Attempt:
    """One try of a retried operation; ``failed(reason)`` records why it did not count."""

    __slots__ = ("number", "reason")

    def __init__(self, number: int) -> None:
        self.number = number
        self.reason: str | None = None


class HatracObjectStore:
    """An :class:`~deriva_ml.store.port.ObjectStore` on a Hatrac server.

    Args:
        hostname_or_server_url: ``"example.org"`` (https) or ``"http://127.0.0.1:8080"``.
        credential: a deriva-py credential (``{"bearer-token": ...}`` or ``{"cookie": ...}``); when
            ``None`` and no ``session`` is given, ``deriva.core.get_credential(host)`` is used.
        session_config: deriva-py session settings, merged over its defaults and :data:`SESSION_CONFIG`.
        session: a ready ``requests.Session`` (tests, custom auth); then ``credential`` and
            ``session_config`` are not used.
        state_dir: where resumable-upload state files live; ``None`` keeps them in memory (resume
            works within this process only).
        options: default :class:`UploadOptions` for ``get``/``stat`` and for ``put`` without options.
        sleep: called with each back-off delay (inject a recorder in tests).
        jitter: ``n -> n`` jitter fractions for the back-off schedule; ``None`` for none.
        retry_cap: the longest single back-off delay in seconds (``None``: no cap).
    """

    def __init__(
        self,
        hostname_or_server_url: str,
        credential: Mapping[str, Any] | None = None,
        session_config: Mapping[str, Any] | None = None,
        *,
        session: requests.Session | None = None,
        state_dir: Path | str | None = None,
        options: UploadOptions | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[int], Sequence[float]] | None = uniform_jitter,
        retry_cap: float | None = 300.0,
    ) -> None:
        scheme, netloc = _split_base(hostname_or_server_url)
        self._base = f"{scheme}://{netloc}"
        self._binding: Any = None  # keeps deriva-py's HatracStore (and so its session) alive
        if session is None:
            session = self._deriva_session(scheme, netloc, credential, session_config)
        self._session = session
        self._state_dir = Path(state_dir) if state_dir is not None else None
        self._memory_state: dict[str, dict[str, Any]] = {}
        self._options = options or UploadOptions()
        self._sleep = sleep
        self._jitter = jitter
        self._retry_cap = retry_cap

    def _deriva_session(
        self,
        scheme: str,
        netloc: str,
        credential: Mapping[str, Any] | None,
        session_config: Mapping[str, Any] | None,
    ) -> requests.Session:
        from deriva.core import DEFAULT_SESSION_CONFIG, HatracStore, get_credential

        host = urlsplit(f"{scheme}://{netloc}").hostname or netloc
        if credential is None:
            credential = get_credential(host)
        config = {**DEFAULT_SESSION_CONFIG, **SESSION_CONFIG, **(session_config or {})}
        self._binding = HatracStore(scheme, netloc, dict(credential) if credential else None, config)
        session: requests.Session = self._binding._session  # deriva-py builds it with auth applied
        return session

    def __repr__(self) -> str:
        return f"HatracObjectStore({self._base!r})"

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    def __enter__(self) -> HatracObjectStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def server_url(self) -> str:
        """``scheme://host[:port]`` of the server."""
        return self._base

    # -- pure -----------------------------------------------------------------------------------
    def object_url(self, table: str, md5: str, filename: str) -> str:
        """The URL an object with this content and name gets in ``table`` (pure; no I/O)."""
        return object_url(table, md5.lower() if isinstance(md5, str) else md5, filename)

    def _full(self, url: str) -> str:
        return url if "://" in url else self._base + url

    # -- HTTP with retries -------------------------------------------------------------------------
    def _attempts(self, opts: UploadOptions, what: str) -> Iterator[_Attempt]:
        """Yield attempts, sleeping the back-off delay before each retry."""
        n = opts.max_retries
        jitter = self._jitter(n) if self._jitter is not None and n else None
        delays = backoff_delays(n, opts.retry_delay, jitter=jitter, cap=self._retry_cap)
        previous: _Attempt | None = None
        for i in range(n + 1):
            if i:
                _get_logger(__name__).warning(
                    "hatrac.retry",
                    request=what,
                    attempt=i + 1,
                    of=n + 1,
                    reason=previous.reason if previous else None,
                    delay_s=round(delays[i - 1], 3),
                )
                self._sleep(delays[i - 1])
            previous = _Attempt(i + 1)
            yield previous

    def _request(
        self,
        method: str,
        url: str,
        opts: UploadOptions,
        *,
        error: type[StoreError],
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """One logical request: retried on transient failures; returns the first final response."""
        what = f"{method} {url}"
        reason = "no attempt made"
        for attempt in self._attempts(opts, what):
            try:
                r = self._session.request(
                    method,
                    self._full(url),
                    data=data,
                    headers=dict(headers or {}),
                    timeout=opts.timeout,
                    stream=stream,
                )
            except _TRANSIENT as exc:
                reason = attempt.reason = f"{type(exc).__name__}: {exc}"
                continue
            if r.status_code in RETRYABLE_STATUS:
                reason = attempt.reason = f"HTTP {r.status_code}"
                r.close()
                continue
            return r
        raise error(f"{what} failed after {opts.max_retries + 1} attempts; last error: {reason}")

    @staticmethod
    def _fail(
        r: requests.Response, what: str, error: type[StoreError], detail: str = ""
    ) -> StoreError | PermissionDenied:
        body = ""
        try:
            body = r.text[:300].strip()
        except Exception:  # pragma: no cover - body unreadable
            body = ""
        msg = (
            f"{what} failed: HTTP {r.status_code}" + (f" ({detail})" if detail else "") + (f": {body}" if body else "")
        )
        if r.status_code in (401, 403):
            return PermissionDenied(msg)
        return error(msg)

    # -- stat -----------------------------------------------------------------------------------
    def _head(self, url: str, opts: UploadOptions, error: type[StoreError]) -> StoredObject | None:
        r = self._request("HEAD", url, opts, error=error)
        r.close()
        if r.status_code in (404, 409):  # 409: the object has no current version
            return None
        if r.status_code != 200:
            raise self._fail(r, f"HEAD {url}", error)
        _, _, filename = parse_object_url(_path_of(url))
        header = r.headers.get("Content-MD5")
        md5 = md5_b64_to_hex(header) if header else None
        try:
            length = int(r.headers.get("Content-Length", "-1"))
        except ValueError:
            length = -1
        return StoredObject(url=_path_of(url), filename=filename, length=length, md5=md5 or "")

    def stat(self, url: str) -> StoredObject | None:
        """Length and MD5 of the object at ``url`` (one ``HEAD``), or ``None`` when there is none.

        The MD5 is the server's ``Content-MD5``; an object stored without one reports the MD5 its
        URL names.
        """
        parse_object_url(_path_of(url))
        obj = self._head(url, self._options, StoreError)
        if obj is not None and not obj.md5:
            obj = StoredObject(url=obj.url, filename=obj.filename, length=obj.length, md5=parse_object_url(obj.url)[1])
        return obj

    # -- put ------------------------------------------------------------------------------------
    def put(
        self,
        path: Path,
        *,
        table: str,
        filename: str,
        md5: str | None = None,
        options: UploadOptions | None = None,
        progress: ProgressCallback | None = None,
    ) -> StoredObject:
        """Upload the file at ``path`` to ``/hatrac/<table>/<md5>.<filename>``.

        Requests: ``HEAD`` (object already there with this MD5 → done, 1 request); else one ``PUT``
        for files up to one chunk (2 requests), or an upload job for larger files: ``POST`` job,
        one ``PUT`` per chunk not yet sent, ``POST`` finalize (n + 3 requests; a resumed job adds a
        ``GET`` of the job status and skips finished chunks). A missing namespace costs one ``PUT``
        of the namespace and a repeat of the refused request.

        Raises:
            InvalidFileName: ``table`` or ``filename`` is not a plain name.
            ChecksumMismatch: the file's bytes do not hash to ``md5``.
            PermissionDenied: the server answered 401 or 403.
            UploadFailed: anything else went wrong, after the retries; the message names the URL.
        """
        validate_filename(table, what="table")
        validate_filename(filename)
        opts = options or self._options
        path = Path(path)
        try:
            if md5 is None:
                md5, length = md5_file(path)
                verify = False
            else:
                md5 = validate_md5(md5.lower() if isinstance(md5, str) else md5)
                length = path.stat().st_size
                verify = True
        except OSError as exc:
            raise UploadFailed(f"cannot read {path}: {exc}") from exc
        url = self.object_url(table, md5, filename)

        existing = self._head(url, opts, UploadFailed)
        if existing is not None:
            if existing.md5 == md5 and existing.length == length:
                if progress is not None:
                    progress(length, length)
                return existing
            if existing.md5 and existing.md5 != md5:
                raise UploadFailed(
                    f"{url} already holds different bytes (MD5 {existing.md5}, not {md5}); refusing to "
                    f"add a version under a name that promises MD5 {md5}"
                )
        if length <= opts.chunk_size:
            self._put_single(path, url, table, filename, md5, length, opts, progress)
        else:
            self._put_chunked(path, url, table, filename, md5, length, verify, opts, progress)
        return StoredObject(url=url, filename=filename, length=length, md5=md5)

    def _ensure_namespace(self, table: str, opts: UploadOptions) -> None:
        ns = f"{HATRAC_PREFIX}/{quote(table, safe='')}"
        r = self._request(
            "PUT",
            ns + "?parents=true",
            opts,
            error=UploadFailed,
            headers={"Content-Type": NAMESPACE_CONTENT_TYPE},
        )
        r.close()
        if r.status_code not in (200, 201, 204, 409):  # 409: it exists already (another writer)
            raise self._fail(r, f"PUT {ns} (create namespace)", UploadFailed)

    def _put_single(
        self,
        path: Path,
        url: str,
        table: str,
        filename: str,
        md5: str,
        length: int,
        opts: UploadOptions,
        progress: ProgressCallback | None,
    ) -> None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UploadFailed(f"cannot read {path}: {exc}") from exc
        actual = hashlib.md5(data).hexdigest()
        if actual != md5:
            raise ChecksumMismatch(path, md5, actual)
        if len(data) != length:
            raise UploadFailed(f"{path} changed size while uploading to {url}")
        headers = {
            "Content-Type": OBJECT_CONTENT_TYPE,
            "Content-MD5": md5_hex_to_b64(md5),
            "Content-Disposition": _content_disposition(filename),
            # REST-API.md "Object Creation and Update": "An `*` with the `If-None-Match` header requires
            # that the object lack a current version" (else 412). A PUT to an existing object otherwise
            # silently adds a version, e.g. when another writer got there after our HEAD, or when a
            # retry follows an attempt whose answer was lost.
            "If-None-Match": "*",
        }
        if progress is not None:
            progress(0, length)
        r = self._request("PUT", url, opts, error=UploadFailed, data=data, headers=headers)
        r.close()
        if r.status_code == 404:  # the namespace is missing: create it, then once more
            self._ensure_namespace(table, opts)
            r = self._request("PUT", url, opts, error=UploadFailed, data=data, headers=headers)
            r.close()
        if r.status_code == 412:  # the object has a current version now: fine if it holds these bytes
            existing = self._head(url, opts, UploadFailed)
            if existing is None or existing.md5 != md5:
                raise UploadFailed(
                    f"PUT {url} failed: HTTP 412: the object was created meanwhile with other bytes "
                    f"(MD5 {existing.md5 if existing else '?'}, not {md5})"
                )
        elif r.status_code not in (200, 201, 204):
            raise self._fail(r, f"PUT {url}", UploadFailed)
        if progress is not None:
            progress(length, length)

    # resumable state ------------------------------------------------------------------------------
    def _state_key(self, url: str, md5: str, length: int, chunk: int) -> str:
        h = hashlib.sha256(f"{url}\n{md5}\n{length}\n{chunk}".encode()).hexdigest()[:32]
        return f"{md5}-{h}"

    def _load_state(self, key: str) -> dict[str, Any] | None:
        if self._state_dir is None:
            return self._memory_state.get(key)
        try:
            state: dict[str, Any] = json.loads((self._state_dir / f"{key}.json").read_text("utf-8"))
            return state
        except (OSError, ValueError):
            return None

    def _save_state(self, key: str, state: dict[str, Any]) -> None:
        if self._state_dir is None:
            self._memory_state[key] = {**state, "done": list(state["done"])}
            return
        self._state_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._state_dir, prefix=f".{key}.", suffix=".part")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(state, f)
            os.replace(tmp, self._state_dir / f"{key}.json")
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def _drop_state(self, key: str) -> None:
        if self._state_dir is None:
            self._memory_state.pop(key, None)
            return
        with contextlib.suppress(FileNotFoundError):
            (self._state_dir / f"{key}.json").unlink()

    def _resume_job(self, state: dict[str, Any] | None, chunk: int, length: int, opts: UploadOptions) -> bool:
        """Is the job in ``state`` still open on the server with the same shape? (one ``GET``)"""
        if not state or not isinstance(state.get("job"), str):
            return False
        r = self._request("GET", state["job"], opts, error=UploadFailed, headers={"Accept": "application/json"})
        try:
            if r.status_code in (404, 409, 410):
                return False
            if r.status_code in (401, 403):
                raise self._fail(r, f"GET {state['job']}", UploadFailed)
            if r.status_code != 200:
                return False
            try:
                info = r.json()
            except ValueError:
                return False
        finally:
            r.close()
        if not isinstance(info, dict):
            return False
        got_chunk = info.get("chunk-length", info.get("chunk_bytes"))
        got_length = info.get("content-length", info.get("total_bytes"))
        return str(got_chunk) == str(chunk) and str(got_length) == str(length)

    def _create_job(
        self, url: str, table: str, filename: str, md5: str, length: int, chunk: int, opts: UploadOptions
    ) -> str:
        body = json.dumps(
            {
                "chunk-length": chunk,
                "content-length": length,
                "content-type": OBJECT_CONTENT_TYPE,
                "content-md5": md5_hex_to_b64(md5),
                "content-disposition": _content_disposition(filename),
            }
        ).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "text/uri-list"}
        r = self._request("POST", url + ";upload", opts, error=UploadFailed, data=body, headers=headers)
        r.close()
        if r.status_code == 404:
            self._ensure_namespace(table, opts)
            r = self._request("POST", url + ";upload", opts, error=UploadFailed, data=body, headers=headers)
            r.close()
        if r.status_code not in (200, 201):
            raise self._fail(r, f"POST {url};upload", UploadFailed)
        location = r.headers.get("Location") or (r.text.strip().splitlines() or [""])[0]
        job = _path_of(location.strip())
        if not job.startswith(_path_of(url) + ";upload/"):
            raise UploadFailed(f"POST {url};upload returned an unexpected job URL {location!r}")
        return job

    def _put_chunked(
        self,
        path: Path,
        url: str,
        table: str,
        filename: str,
        md5: str,
        length: int,
        verify: bool,
        opts: UploadOptions,
        progress: ProgressCallback | None,
    ) -> None:
        chunk = max(opts.chunk_size, math.ceil(length / MAX_CHUNKS))
        nchunks = math.ceil(length / chunk)
        key = self._state_key(url, md5, length, chunk)
        state = self._load_state(key)
        if self._resume_job(state, chunk, length, opts):
            assert state is not None
            done = {int(i) for i in state.get("done", [])}
            job = str(state["job"])
        else:
            job = self._create_job(url, table, filename, md5, length, chunk, opts)
            done = set()
            state = {"url": url, "md5": md5, "length": length, "chunk-length": chunk, "job": job, "done": []}
            self._save_state(key, state)

        h = hashlib.md5()
        sent = 0
        try:
            with path.open("rb") as f:
                for i in range(nchunks):
                    if i in done and not verify:
                        f.seek(min((i + 1) * chunk, length))
                        sent += min(chunk, length - i * chunk)
                        if progress is not None:
                            progress(sent, length)
                        continue
                    data = f.read(chunk)
                    if verify:
                        h.update(data)
                    if len(data) != min(chunk, length - i * chunk):
                        raise UploadFailed(f"{path} changed size while uploading to {url}")
                    if i not in done:
                        self._put_chunk(job, i, data, opts)
                        done.add(i)
                        state["done"] = sorted(done)
                        self._save_state(key, state)
                    sent += len(data)
                    if progress is not None:
                        progress(sent, length)
                if f.read(1):
                    raise UploadFailed(f"{path} changed size while uploading to {url}")
        except OSError as exc:
            if isinstance(exc, _OURS):
                raise
            raise UploadFailed(f"cannot read {path}: {exc}") from exc
        if verify and h.hexdigest() != md5:
            self._cancel_job(job, opts)
            self._drop_state(key)
            raise ChecksumMismatch(path, md5, h.hexdigest())

        r = self._request("POST", job, opts, error=UploadFailed, headers={"Accept": "text/uri-list"})
        r.close()
        if r.status_code in (200, 201, 204):
            self._drop_state(key)
            return
        if r.status_code == 404:
            # A retried finalize whose first attempt went through (the job is gone)?
            existing = self._head(url, opts, UploadFailed)
            self._drop_state(key)
            if existing is not None and existing.md5 == md5:
                return
        if r.status_code == 409:
            self._drop_state(key)
            raise self._fail(r, f"POST {job} (finalize)", UploadFailed, "server MD5 check failed")
        raise self._fail(r, f"POST {job} (finalize)", UploadFailed)

    def _put_chunk(self, job: str, index: int, data: bytes, opts: UploadOptions) -> None:
        chunk_url = f"{job}/{index}"
        r = self._request(
            "PUT",
            chunk_url,
            opts,
            error=UploadFailed,
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        r.close()
        if r.status_code not in (200, 201, 204):
            raise self._fail(r, f"PUT {chunk_url}", UploadFailed)

    def _cancel_job(self, job: str, opts: UploadOptions) -> None:
        with contextlib.suppress(StoreError, PermissionDenied):  # best effort; servers reap old jobs
            self._request("DELETE", job, opts, error=UploadFailed).close()

    # -- get ------------------------------------------------------------------------------------
    def get(
        self,
        url: str,
        dest: Path,
        *,
        md5: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> Path:
        """Download ``url`` to ``dest`` atomically (one streamed ``GET``; retried from the start).

        The bytes are verified against ``md5`` and the server's ``Content-MD5`` (either or both) and
        ``Content-Length``; on a mismatch nothing is left at ``dest``. If ``dest`` is an existing
        directory the file is written inside it under the object's file name.
        """
        _, _, filename = parse_object_url(_path_of(url))
        dest = Path(dest)
        if dest.is_dir():
            dest = dest / filename
        opts = self._options
        what = f"GET {url}"
        reason = "no attempt made"
        for attempt in self._attempts(opts, what):
            try:
                r = self._session.request("GET", self._full(url), timeout=opts.timeout, stream=True)
            except _TRANSIENT as exc:
                reason = attempt.reason = f"{type(exc).__name__}: {exc}"
                continue
            try:
                if r.status_code in RETRYABLE_STATUS:
                    reason = attempt.reason = f"HTTP {r.status_code}"
                    continue
                if r.status_code in (404, 409):
                    raise ObjectNotFound(f"{what}: no object at {url} (HTTP {r.status_code})")
                if r.status_code != 200:
                    raise self._fail(r, what, StoreError)
                header = r.headers.get("Content-MD5")
                header_md5 = md5_b64_to_hex(header) if header else None
                length_header = r.headers.get("Content-Length")
                length = int(length_header) if length_header and length_header.isdigit() else None
                write_hashed(
                    r.iter_content(IO_CHUNK),
                    dest,
                    what=url,
                    expected_md5=[md5.lower() if md5 else None, header_md5],
                    expected_length=length,
                    total=length,
                    progress=progress,
                )
                return dest
            except _TRANSIENT as exc:
                reason = attempt.reason = f"{type(exc).__name__}: {exc}"
                continue
            except OSError as exc:
                if isinstance(exc, _OURS):
                    raise
                raise StoreError(f"{what}: cannot write {dest}: {exc}") from exc
            finally:
                r.close()
        raise StoreError(f"{what} failed after {opts.max_retries + 1} attempts; last error: {reason}")
