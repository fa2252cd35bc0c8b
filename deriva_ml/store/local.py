"""A content-addressed object store in a local directory: the embedded default.

Layout under ``root``::

    objects/<md5[:2]>/<md5>/<filename>     the bytes, one file per (content, name)
    index/<h[:2]>/<h>.json                 h = sha256(url): {"url", "table", "filename", "length", "md5"}
    tmp/                                   staging for copies whose MD5 is not known yet

URLs have the same shape as on Hatrac (``/hatrac/<Table>/<md5>.<quoted filename>``), so an execution
recorded offline can be replayed into a live catalog with identical provenance.

Every write is atomic (temp file in the destination directory, fsync, ``os.replace``); the MD5 is
computed while copying, in one pass; a given MD5 is verified before anything becomes visible.

Durability in bulk: :meth:`LocalObjectStore.deferred` gives a view of the same store whose puts skip
their fsyncs (still atomic: temp file and rename) and record what they wrote; its :meth:`sync` then makes
all of it durable at once (one ``syncfs`` on Linux, else one fsync per file and per directory). An upload
calls ``sync`` before the manifest or catalog commit that references the objects, so the guarantee
"every object is durable before anything points at it" is kept at a fraction of the cost of an fsync
per write (see ``benchmarks/README.md``).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import stat as stat_mod
import tempfile
from pathlib import Path

from deriva_ml.core.codec import parse_json
from deriva_ml.core.errors import ObjectNotFound, StoreError
from deriva_ml.store._files import PendingSync, atomic_file, fsync_dir, read_chunks, write_hashed
from deriva_ml.store.names import ObjectRef, object_url, resolve_object_url, validate_filename, validate_md5
from deriva_ml.store.port import ProgressCallback, StoredObject, UploadOptions

__all__ = ["LocalObjectStore"]


class LocalObjectStore:
    """An :class:`~deriva_ml.store.port.ObjectStore` backed by a directory tree."""

    def __init__(self, root: Path | str) -> None:
        self._root = Path(root)
        self._pending: PendingSync | None = None

    def deferred(self) -> LocalObjectStore:
        """A view of this store whose puts defer their fsyncs until :meth:`sync` (see the module doc).

        The view shares the directory; puts through this store itself stay durable on return.
        """
        view = copy.copy(self)
        view._pending = PendingSync()
        return view

    def sync(self) -> int:
        """Make every object put through this (deferred) view durable; the number of sync calls it took.

        A no-op (0) on a store that is not a deferred view: its puts are durable on return already.
        """
        return 0 if self._pending is None else self._pending.flush(self._root)

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self._root)!r})"

    @property
    def root(self) -> Path:
        """The directory holding the store."""
        return self._root

    # -- pure -----------------------------------------------------------------------------------
    def object_url(self, table: str, md5: str, filename: str) -> str:
        """The URL an object with this content and name gets in ``table`` (pure; no I/O)."""
        return object_url(table, md5.lower() if isinstance(md5, str) else md5, filename)

    def _blob_path(self, md5: str, filename: str) -> Path:
        return self._root / "objects" / md5[:2] / md5 / filename

    def check_url(self, url: object) -> ObjectRef:
        """Parse an object URL; only server-relative ``/hatrac/...`` paths (this store has no server).

        Raises :class:`~deriva_ml.store.names.UntrustedURL` for anything else (absolute URLs included).
        """
        return resolve_object_url(url, None)

    def _index_path(self, url: str) -> Path:
        h = hashlib.sha256(url.encode("utf-8")).hexdigest()
        return self._root / "index" / h[:2] / f"{h}.json"

    # -- effects --------------------------------------------------------------------------------
    def path_of(self, url: str) -> Path | None:
        """The file holding the object at ``url`` (read-only use), or ``None`` if there is none."""
        obj = self.stat(url)
        return None if obj is None else self._blob_path(obj.md5, obj.filename)

    def stat(self, url: str) -> StoredObject | None:
        """Length and MD5 of the object at ``url``, or ``None`` when there is none."""
        return self._stat_path(self.check_url(url).path)  # malformed URLs raise, they are not "missing"

    def _stat_path(self, url: str) -> StoredObject | None:
        """:meth:`stat` of a URL already in canonical form (checked, or made by :meth:`object_url`)."""
        try:
            index = self._index_path(url)
            record = parse_json(index.read_text(encoding="utf-8"), str(index))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StoreError(f"unreadable index entry for {url} in {self._root}: {exc}") from exc
        obj = StoredObject(url=record["url"], filename=record["filename"], length=record["length"], md5=record["md5"])
        try:
            valid = obj.url == url and validate_filename(obj.filename) == obj.filename and validate_md5(obj.md5)
        except ValueError:
            valid = False
        if not valid:
            return None
        try:
            st = self._blob_path(obj.md5, obj.filename).stat()
        except FileNotFoundError:
            return None
        if not stat_mod.S_ISREG(st.st_mode) or st.st_size != obj.length:
            return None  # e.g. a blob truncated by a crash before its deferred sync: store it again
        return obj

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
        """Store the file at ``path`` (idempotent: the same bytes and name are stored once).

        When ``md5`` is given and the store already holds that object, the file is not read.
        Otherwise the bytes are copied and hashed in one pass and a given ``md5`` is verified
        (:class:`~deriva_ml.core.errors.ChecksumMismatch`, nothing stored). ``options`` is accepted
        for interface compatibility and ignored (a local copy has no chunks, timeouts or retries).
        """
        table = validate_filename(table, what="table")
        filename = validate_filename(filename)
        path = Path(path)
        if md5 is not None:
            md5 = validate_md5(md5.lower() if isinstance(md5, str) else md5)
            existing = self._stat_path(self.object_url(table, md5, filename))  # a URL of our making: canonical
            if existing is not None:
                if self._pending is not None:  # perhaps written by another deferred view, not synced yet
                    blob, index = self._blob_path(md5, filename), self._index_path(existing.url)
                    self._pending.add(files=[blob, index], dirs=[blob.parent, index.parent])
                if progress is not None:
                    progress(existing.length, existing.length)
                return existing
        try:
            total = path.stat().st_size
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc}") from exc
        try:
            if md5 is not None:
                blob = self._blob_path(md5, filename)
                with path.open("rb") as src:
                    actual, length = write_hashed(
                        read_chunks(src),
                        blob,
                        what=path,
                        expected_md5=[md5],
                        total=total,
                        progress=progress,
                        pending=self._pending,
                    )
                self._record_new_dirs(blob)
            else:
                actual, length = self._stage_and_place(path, filename, total, progress)
            url = self.object_url(table, actual, filename)
            obj = StoredObject(url=url, filename=filename, length=length, md5=actual)
            # with a given MD5, stat() just found no valid index entry for this URL: nothing to compare with
            self._write_index(table, obj, compare=md5 is None)
        except OSError as exc:
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"cannot store {path} in {self._root}: {exc}") from exc
        return obj

    def _stage_and_place(
        self, path: Path, filename: str, total: int, progress: ProgressCallback | None
    ) -> tuple[str, int]:
        staging = self._root / "tmp"
        staging.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=staging, suffix=".staged")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            with path.open("rb") as src:
                actual, length = write_hashed(
                    read_chunks(src), tmp, what=path, total=total, progress=progress, pending=self._pending
                )
            blob = self._blob_path(actual, filename)
            if blob.is_file() and blob.stat().st_size == length:
                return actual, length  # same bytes and name already stored: no second copy
            blob.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, blob)
            if self._pending is None:
                fsync_dir(blob.parent)
            else:
                self._pending.add(files=[blob], dirs=[blob.parent])
                self._record_new_dirs(blob)
            return actual, length
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def _record_new_dirs(self, path: Path) -> None:
        """Deferred mode: the directories ``mkdir`` may have created above ``path`` are synced too."""
        if self._pending is not None:
            parent = path.parent
            self._pending.add(dirs=[parent, parent.parent, parent.parent.parent])

    def _write_index(self, table: str, obj: StoredObject, *, compare: bool = True) -> None:
        """Write the index entry of ``obj`` (``compare``: not when an identical one is there already)."""
        record = {
            "url": obj.url,
            "table": table,
            "filename": obj.filename,
            "length": obj.length,
            "md5": obj.md5,
        }
        index = self._index_path(obj.url)
        if compare:
            try:
                if parse_json(index.read_text(encoding="utf-8"), str(index)) == record:
                    return
            except (OSError, ValueError):
                pass
        with atomic_file(index, pending=self._pending) as f:
            f.write(json.dumps(record, sort_keys=True).encode("utf-8"))
        self._record_new_dirs(index)

    def get(
        self,
        url: str,
        dest: Path,
        *,
        md5: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> Path:
        """Copy the object at ``url`` to ``dest`` atomically, re-hashing the bytes on the way.

        If ``dest`` is an existing directory the file is written inside it under the object's file
        name. Raises :class:`~deriva_ml.core.errors.ChecksumMismatch` when the bytes do not hash to
        ``md5`` or to the MD5 recorded at ``put`` (the stored file changed), leaving ``dest`` as it was.
        """
        obj = self.stat(url)
        if obj is None:
            raise ObjectNotFound(f"no object at {url} in {self._root}")
        dest = Path(dest)
        if dest.is_dir():
            dest = dest / obj.filename
        blob = self._blob_path(obj.md5, obj.filename)
        try:
            with blob.open("rb") as src:
                write_hashed(
                    read_chunks(src),
                    dest,
                    what=url,
                    expected_md5=[md5, obj.md5],
                    expected_length=obj.length,
                    total=obj.length,
                    progress=progress,
                )
        except OSError as exc:
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"cannot copy {url} to {dest}: {exc}") from exc
        return dest
