"""The connection of a Hatrac object store: one server, its session, URL trust, retries, error mapping.

Every request goes to the configured server only (:meth:`HatracConnection.check_url` refuses a
catalog-supplied URL of another host before any request, so the credential never leaves this server).
Each request has its own timeout (``UploadOptions.timeout``) and is retried on connection errors,
timeouts and 408/429/5xx responses (a 500 naming a permanent file-system error is final at once), up to
``UploadOptions.max_retries`` times, sleeping :func:`deriva_ml.core.retry.backoff_delays` between
attempts. Final responses map to our errors: 401/403 -> :class:`PermissionDenied`, others -> the
caller's :class:`StoreError` subclass, the message naming the request and the server's answer.

Uploads (:mod:`deriva_ml.store._hatrac_upload`) and the public store (:mod:`deriva_ml.store.hatrac`)
build on this class.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

from deriva_ml._log import get_logger as _get_logger
from deriva_ml.core.errors import PermissionDenied, StoreError
from deriva_ml.core.retry import backoff_delays
from deriva_ml.store._files import EMPTY_MD5, md5_b64_to_hex
from deriva_ml.store.names import ObjectRef, object_url, resolve_object_url, validate_filename
from deriva_ml.store.port import StoredObject, UploadOptions

#: Responses worth another attempt; everything else is final.
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})

#: A 500 whose body names one of these errors cannot heal by retrying (Hatrac's file-system backend
#: answers ``[Errno 36] File name too long`` for object names over ~228 bytes): it is final at once.
_PERMANENT_500 = re.compile(r"\[Errno (?:20|21|22|36|84)\]|File name too long|Invalid argument|Not a directory")

#: Merged over deriva-py's ``DEFAULT_SESSION_CONFIG``: no urllib3-level retries (we retry ourselves,
#: with our own schedule and per-request timeouts).
SESSION_CONFIG: Mapping[str, Any] = {
    "retry_connect": 0,
    "retry_read": 0,
    "retry_backoff_factor": 0.0,
    "retry_status_forcelist": [],
}

#: Our own errors (both are OSError subclasses, so ``except OSError`` must let them through).
_OURS = (StoreError, PermissionDenied)

_TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


def uniform_jitter(n: int) -> list[float]:
    """Default jitter: ``n`` fractions uniform in ``[-0.1, 0.1]`` (±10 % on each delay)."""
    return [random.uniform(-0.1, 0.1) for _ in range(n)]


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


class _Attempt:
    """One try of a retried operation; ``failed(reason)`` records why it did not count."""

    __slots__ = ("number", "reason")

    def __init__(self, number: int) -> None:
        self.number = number
        self.reason: str | None = None


class HatracConnection:
    """Requests to one Hatrac server with retries and error mapping (see the module docstring);
    the constructor's arguments are documented on :class:`~deriva_ml.store.hatrac.HatracObjectStore`."""

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
        # where the uploads (deriva_ml.store._hatrac_upload) keep the state of resumable jobs
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

    def _send(
        self,
        method: str,
        url: str,
        opts: UploadOptions,
        *,
        error: type[StoreError],
        ok: Collection[int] | None = None,
        what: str = "",
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """:meth:`_request` with its (small) body read and the connection released; with ``ok``, a final
        status outside it raises (:meth:`_fail`, naming ``what`` or the request)."""
        r = self._request(method, url, opts, error=error, data=data, headers=headers)
        r.close()
        if ok is not None and r.status_code not in ok:
            raise self._fail(r, what or f"{method} {url}", error)
        return r

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
        r = self._send("HEAD", ref.url, opts, error=error)
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
