"""An object store on a Hatrac server (the object service of a DERIVA deployment).

Speaks Hatrac's documented REST API (``docs/REST-API.md`` in informatics-isi-edu/hatrac):

- ``HEAD /hatrac/<T>/<obj>`` — does the object exist, with which ``Content-MD5`` and length (``stat``);
- writes (``put``): one ``PUT`` with ``If-None-Match: *``, or an upload job for files larger than one
  chunk, and the namespace created when missing — :mod:`deriva_ml.store._hatrac_upload`;
- ``GET /hatrac/<T>/<obj>`` — streamed download, verified against ``Content-MD5`` (``get``).

Resumption of an interrupted upload job is client-side (a state file per job). Requests, retries and
error mapping:
:mod:`deriva_ml.store._hatrac_http`. deriva-py's own urllib3 retries are switched off in the session this
module builds, so the two layers do not multiply (deriva-py's defaults sleep ~486 s on a dead server).

This module imports ``requests`` at import time and deriva-py lazily; ``import deriva_ml`` imports
neither.
"""

from __future__ import annotations

from pathlib import Path

from deriva_ml._log import get_logger as _get_logger
from deriva_ml.core.errors import ObjectNotFound, StoreError, UploadFailed
from deriva_ml.store._files import IO_CHUNK, md5_b64_to_hex, md5_file, write_hashed
from deriva_ml.store._hatrac_http import (
    _OURS,
    _TRANSIENT,
    RETRYABLE_STATUS,
    SESSION_CONFIG,
    _filename_from_disposition,
    uniform_jitter,
)
from deriva_ml.store._hatrac_upload import MAX_CHUNKS, NAMESPACE_CONTENT_TYPE, HatracUploads, Upload
from deriva_ml.store.names import object_url, validate_filename, validate_md5
from deriva_ml.store.port import ProgressCallback, StoredObject, UploadOptions

__all__ = [
    "MAX_CHUNKS",
    "MAX_GENERATIONS",
    "NAMESPACE_CONTENT_TYPE",
    "RETRYABLE_STATUS",
    "SESSION_CONFIG",
    "HatracObjectStore",
    "uniform_jitter",
]

#: Alternative object names tried after the plain one was deleted on the server (409 on create).
MAX_GENERATIONS = 20


class HatracObjectStore(HatracUploads):
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

    def __enter__(self) -> HatracObjectStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
            obj = self._upload(Upload(path, url, table, filename, md5, length), verify, opts, progress)
            if obj is not None:
                return obj
            _get_logger(__name__).warning("hatrac.name_unavailable", url=url, next_generation=generation + 1)
        raise UploadFailed(
            f"cannot store {path}: the names {object_url(table, md5, filename)} and its {MAX_GENERATIONS - 1} "
            f"alternatives <md5>-<n>.<name> are all unavailable (deleted on the server)"
        )

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
