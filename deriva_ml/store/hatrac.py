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
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import requests

from deriva_ml._log import get_logger as _get_logger
from deriva_ml.core.codec import parse_json
from deriva_ml.core.errors import ChecksumMismatch, ObjectNotFound, PermissionDenied, StoreError, UploadFailed
from deriva_ml.core.retry import backoff_delays
from deriva_ml.store._files import EMPTY_MD5, IO_CHUNK, md5_b64_to_hex, md5_file, md5_hex_to_b64, write_hashed
from deriva_ml.store.names import (
    HATRAC_PREFIX,
    ObjectRef,
    object_url,
    resolve_object_url,
    validate_filename,
    validate_md5,
)
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

#: A 500 whose body names one of these errors cannot heal by retrying (Hatrac's file-system backend
#: answers ``[Errno 36] File name too long`` for object names over ~228 bytes): it is final at once.
_PERMANENT_500 = re.compile(r"\[Errno (?:20|21|22|36|84)\]|File name too long|Invalid argument|Not a directory")

#: Alternative object names tried after the plain one was deleted on the server (409 on create).
MAX_GENERATIONS = 20

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


def _filename_from_disposition(header: str | None) -> str | None:
    """The file name of a ``Content-Disposition: filename*=UTF-8''<quoted>`` header, if valid."""
    if not header:
        return None
    m = re.search(r"filename\*=UTF-8''([^;\s]+)", header, re.IGNORECASE)
    if m is None:
        return None
    try:
        return validate_filename(unquote(m.group(1), errors="strict"))
    except (ValueError, UnicodeDecodeError):
        return None


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
        allowed_origins: Sequence[str] = (),
    ) -> None:
        scheme, netloc = _split_base(hostname_or_server_url)
        self._base = f"{scheme}://{netloc}"
        self._allowed_origins = tuple(allowed_origins)
        for origin in self._allowed_origins:
            _split_base(origin)
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

    def check_url(self, url: object) -> ObjectRef:
        """Parse a catalog-supplied object URL, refusing anything not on this server (no request).

        See :func:`deriva_ml.store.names.resolve_object_url`: a server-relative ``/hatrac/...`` path, or
        an absolute URL whose scheme, host and port are this server's (or an ``allowed_origins`` entry).
        Raises :class:`~deriva_ml.store.names.UntrustedURL` otherwise.
        """
        return resolve_object_url(url, self._base, allowed_origins=self._allowed_origins)

    def _full(self, path: str) -> str:
        """Absolute URL of a server-relative path; requests only ever go to the configured server."""
        if not path.startswith("/") or path.startswith("//"):
            raise StoreError(f"internal: {path!r} is not a server-relative path")
        return self._base + path

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
            if r.status_code in RETRYABLE_STATUS and not self._permanent(r):
                reason = attempt.reason = f"HTTP {r.status_code}"
                r.close()
                continue
            return r
        raise error(f"{what} failed after {opts.max_retries + 1} attempts; last error: {reason}")

    @staticmethod
    def _permanent(r: requests.Response) -> bool:
        """A 500 that names an error retrying cannot heal (reads the short error body)."""
        if r.status_code != 500:
            return False
        try:
            body = r.content[:2000].decode("utf-8", "replace")
        except Exception:  # pragma: no cover - body unreadable
            return False
        return bool(_PERMANENT_500.search(body))

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
    def _head(self, ref: ObjectRef, opts: UploadOptions, error: type[StoreError]) -> StoredObject | None:
        r = self._request("HEAD", ref.url, opts, error=error)
        r.close()
        if r.status_code in (404, 409):  # 404: no such (or a deleted) name; 409: no current version
            return None
        if r.status_code != 200:
            raise self._fail(r, f"HEAD {ref.url}", error)
        header = r.headers.get("Content-MD5")
        md5 = (md5_b64_to_hex(header) if header else None) or ref.md5 or ""
        try:
            length = int(r.headers.get("Content-Length", "-1"))
        except ValueError:
            length = -1
        if length < 0 and md5 == EMPTY_MD5:
            length = 0  # the real server sends no Content-Length on a HEAD of a 0-byte object
        filename = _filename_from_disposition(r.headers.get("Content-Disposition")) or ref.filename
        return StoredObject(url=ref.url, filename=filename, length=length, md5=md5)

    def stat(self, url: str) -> StoredObject | None:
        """Length and MD5 of the object at ``url`` (one ``HEAD``), or ``None`` when there is none.

        ``url`` may be any Hatrac object URL of this server (versioned or not; see :meth:`check_url`).
        The MD5 is the server's ``Content-MD5``, else the one the object name promises; the file name
        is the one in ``Content-Disposition``, else the object name's.
        """
        return self._head(self.check_url(url), self._options, StoreError)

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
        """Upload the file at ``path`` to ``/hatrac/<table>/<md5>.<bounded filename>``.

        Requests: files up to one chunk go in one ``PUT`` with ``If-None-Match: *`` (**1** request);
        a 412 (the object exists) is followed by one ``HEAD``, and succeeds when that object holds the
        same MD5. Larger files: ``HEAD`` (already there with this MD5 → done), else an upload job:
        ``POST`` job, one ``PUT`` per chunk not yet sent, ``POST`` finalize (n + 3 requests; a resumed
        job adds a ``GET`` of the job status and skips finished chunks). A missing namespace costs one
        ``PUT`` of the namespace and a repeat of the refused request. A name the server refuses with
        409 (it was deleted once and can never be created again) moves on to ``<md5>-1.<name>``,
        ``<md5>-2.<name>``, ... (one more request each).

        Raises:
            InvalidFileName: ``table`` or ``filename`` is not a plain name.
            ChecksumMismatch: the file's bytes do not hash to ``md5``.
            PermissionDenied: the server answered 401 or 403.
            UploadFailed: anything else went wrong, after the retries; the message names the URL.
        """
        table = validate_filename(table, what="table")
        filename = validate_filename(filename)
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
        for generation in range(MAX_GENERATIONS):
            url = object_url(table, md5, filename, generation=generation)
            if length <= opts.chunk_size:
                obj = self._put_single(path, url, table, filename, md5, length, opts, progress)
            else:
                obj = self._put_chunked(path, url, table, filename, md5, length, verify, opts, progress)
            if obj is not None:
                return obj
            _get_logger(__name__).warning("hatrac.name_unavailable", url=url, next_generation=generation + 1)
        raise UploadFailed(
            f"cannot store {path}: the names {object_url(table, md5, filename)} and its {MAX_GENERATIONS - 1} "
            f"alternatives <md5>-<n>.<name> are all unavailable (deleted on the server)"
        )

    def _existing(self, url: str, md5: str, length: int, opts: UploadOptions) -> StoredObject | None:
        """The object at ``url`` if it holds exactly these bytes; ``UploadFailed`` if other bytes."""
        existing = self._head(self.check_url(url), opts, UploadFailed)
        if existing is None:
            return None
        if existing.md5 != md5 or existing.length not in (length, -1):
            raise UploadFailed(
                f"{url} already holds different bytes (MD5 {existing.md5 or '?'}, {existing.length} bytes; "
                f"not {md5}, {length} bytes); refusing to add a version under a name that promises MD5 {md5}"
            )
        return existing

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
    ) -> StoredObject | None:
        """One ``PUT`` with ``If-None-Match: *``; ``None`` when the server says the name is unavailable."""
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
            # silently adds a version (e.g. a second upload of the same file, another writer, or a retry
            # after an attempt whose answer was lost), so no HEAD is needed before the PUT.
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
        if r.status_code == 409:  # the name was deleted once (or is a namespace): never creatable again
            return None
        if r.status_code == 412:  # the object has a current version: fine if it holds these bytes
            existing = self._existing(url, md5, length, opts)
            if existing is None:
                raise UploadFailed(f"PUT {url} failed: HTTP 412 (the object exists), but a HEAD finds none")
        elif r.status_code not in (200, 201, 204):
            raise self._fail(r, f"PUT {url}", UploadFailed)
        if progress is not None:
            progress(length, length)
        return StoredObject(url=url, filename=filename, length=length, md5=md5)

    # resumable state ------------------------------------------------------------------------------
    def _state_key(self, url: str, md5: str, length: int, chunk: int) -> str:
        h = hashlib.sha256(f"{url}\n{md5}\n{length}\n{chunk}".encode()).hexdigest()[:32]
        return f"{md5}-{h}"

    def _load_state(self, key: str) -> dict[str, Any] | None:
        if self._state_dir is None:
            return self._memory_state.get(key)
        try:
            path = self._state_dir / f"{key}.json"
            state = parse_json(path.read_text("utf-8"), str(path))
            return state if isinstance(state, dict) else None
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
    ) -> str | None:
        """``POST <url>;upload``: the job's path, or ``None`` when the name is unavailable (409)."""
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
        if r.status_code == 409:
            return None
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
    ) -> StoredObject | None:
        """``HEAD`` (already there → done), else an upload job; ``None`` when the name is unavailable."""
        if self._existing(url, md5, length, opts) is not None:
            if progress is not None:
                progress(length, length)
            return StoredObject(url=url, filename=filename, length=length, md5=md5)
        chunk = max(opts.chunk_size, math.ceil(length / MAX_CHUNKS))
        nchunks = math.ceil(length / chunk)
        key = self._state_key(url, md5, length, chunk)
        state = self._load_state(key)
        if self._resume_job(state, chunk, length, opts):
            assert state is not None
            done = {int(i) for i in state.get("done", [])}
            job = str(state["job"])
        else:
            created = self._create_job(url, table, filename, md5, length, chunk, opts)
            if created is None:
                return None
            job = created
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

        result = StoredObject(url=url, filename=filename, length=length, md5=md5)
        r = self._request("POST", job, opts, error=UploadFailed, headers={"Accept": "text/uri-list"})
        r.close()
        if r.status_code in (200, 201, 204):
            self._drop_state(key)
            return result
        if r.status_code == 404:
            # A retried finalize whose first attempt went through (the job is gone)?
            self._drop_state(key)
            if self._existing(url, md5, length, opts) is not None:
                return result
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
        ref = self.check_url(url)  # before any request: the credential never leaves this server
        url = ref.url
        dest = Path(dest)
        into_dir = dest.is_dir()
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
                if r.status_code in RETRYABLE_STATUS and not self._permanent(r):
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
                if into_dir:
                    name = _filename_from_disposition(r.headers.get("Content-Disposition"))
                    dest = dest / (name or validate_filename(ref.filename))
                    into_dir = False
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
