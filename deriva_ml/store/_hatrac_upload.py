"""Writing objects to Hatrac: one ``PUT`` for small files, chunked upload jobs for large ones.

- ``PUT /hatrac/<T>/<obj>`` with ``Content-MD5`` and ``If-None-Match: *`` — a whole object in one
  request (files no larger than one chunk); a 412 (the object got a version meanwhile) is checked
  with a ``HEAD`` and accepted only when that version has the same MD5;
- ``POST /hatrac/<T>/<obj>;upload`` (JSON job description) → job URL; ``PUT <job>/<i>`` per chunk;
  ``POST <job>`` to finalize; ``GET <job>`` for the job's status; ``DELETE <job>`` to cancel;
- ``PUT /hatrac/<T>?parents=true`` with ``Content-Type: application/x-hatrac-namespace`` — only after a
  404 says the namespace is missing.

Hatrac does not report which chunks of a job it holds, so resumption is client-side: the job URL and
the finished chunk indices are kept in a small JSON state file (in ``state_dir``; in memory when no
``state_dir`` is given). A later ``put`` of the same file checks the job still exists
(``GET <job>``) and sends only the missing chunks. A 409 on create means the name is unavailable
(deleted once): these methods then return ``None`` and the store tries the next name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import attrs
import requests

from deriva_ml.core.codec import parse_json
from deriva_ml.core.errors import ChecksumMismatch, PermissionDenied, StoreError, UploadFailed
from deriva_ml.store._files import md5_hex_to_b64
from deriva_ml.store._hatrac_http import _OURS, HatracConnection
from deriva_ml.store.names import HATRAC_PREFIX
from deriva_ml.store.port import ProgressCallback, StoredObject, UploadOptions

NAMESPACE_CONTENT_TYPE = "application/x-hatrac-namespace"
OBJECT_CONTENT_TYPE = "application/octet-stream"

#: Chunked uploads never use more chunks than this (deriva-py's ``max_chunk_limit``; S3's part limit);
#: the chunk size grows for larger files.
MAX_CHUNKS = 10_000


def _content_disposition(filename: str) -> str:
    return "filename*=UTF-8''" + quote(filename, safe="")


def _path_of(location: str) -> str:
    """The path of a URL that may be absolute (``Location`` headers may be either)."""
    return urlsplit(location).path if "://" in location else location


@attrs.frozen
class Upload:
    """One file to store under one name: what ``put`` checked (bounded name, MD5, length) for one attempt."""

    path: Path
    url: str
    table: str
    filename: str
    md5: str
    length: int

    def stored(self) -> StoredObject:
        """The object this upload leaves on the server."""
        return StoredObject(url=self.url, filename=self.filename, length=self.length, md5=self.md5)


class HatracUploads(HatracConnection):
    """The write half of the Hatrac store: single ``PUT``, resumable upload jobs, namespace creation."""

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
        headers = {"Content-Type": NAMESPACE_CONTENT_TYPE}
        ok = (200, 201, 204, 409)  # 409: it exists already (another writer)
        what = f"PUT {ns} (create namespace)"
        self._send("PUT", ns + "?parents=true", opts, error=UploadFailed, ok=ok, what=what, headers=headers)

    def _send_in_namespace(
        self, method: str, url: str, table: str, opts: UploadOptions, data: bytes | None, headers: dict[str, str]
    ) -> requests.Response:
        """A create request; when the server says the namespace is missing (404), create it and send again."""
        r = self._send(method, url, opts, error=UploadFailed, data=data, headers=headers)
        if r.status_code == 404:
            self._ensure_namespace(table, opts)
            r = self._send(method, url, opts, error=UploadFailed, data=data, headers=headers)
        return r

    def _upload(
        self, up: Upload, verify: bool, opts: UploadOptions, progress: ProgressCallback | None
    ) -> StoredObject | None:
        """Store ``up`` under its URL: one ``PUT`` up to one chunk, else an upload job; ``None`` when the
        server says the name is unavailable (deleted once). ``verify``: hash the file while sending it."""
        if up.length <= opts.chunk_size:
            return self._put_single(up, opts, progress)
        return self._put_chunked(up, verify, opts, progress)

    def _put_single(self, up: Upload, opts: UploadOptions, progress: ProgressCallback | None) -> StoredObject | None:
        """One ``PUT`` with ``If-None-Match: *``; ``None`` when the server says the name is unavailable."""
        path, url, md5, length = up.path, up.url, up.md5, up.length
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
            "Content-Disposition": _content_disposition(up.filename),
            # REST-API.md "Object Creation and Update": "An `*` with the `If-None-Match` header requires
            # that the object lack a current version" (else 412). A PUT to an existing object otherwise
            # silently adds a version (e.g. a second upload of the same file, another writer, or a retry
            # after an attempt whose answer was lost), so no HEAD is needed before the PUT.
            "If-None-Match": "*",
        }
        if progress is not None:
            progress(0, length)
        r = self._send_in_namespace("PUT", url, up.table, opts, data, headers)
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
        return up.stored()

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

    def _create_job(self, up: Upload, chunk: int, opts: UploadOptions) -> str | None:
        """``POST <url>;upload``: the job's path, or ``None`` when the name is unavailable (409)."""
        body = json.dumps(
            {
                "chunk-length": chunk,
                "content-length": up.length,
                "content-type": OBJECT_CONTENT_TYPE,
                "content-md5": md5_hex_to_b64(up.md5),
                "content-disposition": _content_disposition(up.filename),
            }
        ).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "text/uri-list"}
        url = up.url
        r = self._send_in_namespace("POST", url + ";upload", up.table, opts, body, headers)
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
        self, up: Upload, verify: bool, opts: UploadOptions, progress: ProgressCallback | None
    ) -> StoredObject | None:
        """``HEAD`` (already there → done), else an upload job; ``None`` when the name is unavailable."""
        path, url, md5, length = up.path, up.url, up.md5, up.length
        if self._existing(url, md5, length, opts) is not None:
            if progress is not None:
                progress(length, length)
            return up.stored()
        chunk = max(opts.chunk_size, math.ceil(length / MAX_CHUNKS))
        nchunks = math.ceil(length / chunk)
        key = self._state_key(url, md5, length, chunk)
        state = self._load_state(key)
        if self._resume_job(state, chunk, length, opts):
            assert state is not None
            done = {int(i) for i in state.get("done", [])}
            job = str(state["job"])
        else:
            created = self._create_job(up, chunk, opts)
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

        result = up.stored()
        r = self._send("POST", job, opts, error=UploadFailed, headers={"Accept": "text/uri-list"})
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
        headers = {"Content-Type": OBJECT_CONTENT_TYPE}
        self._send("PUT", f"{job}/{index}", opts, error=UploadFailed, ok=(200, 201, 204), data=data, headers=headers)

    def _cancel_job(self, job: str, opts: UploadOptions) -> None:
        with contextlib.suppress(StoreError, PermissionDenied):  # best effort; servers reap old jobs
            self._send("DELETE", job, opts, error=UploadFailed)
