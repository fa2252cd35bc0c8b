"""File-system helpers of the asset cache: hashing, verified downloads moved into place, links, removal."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deriva_ml._log import get_logger as _get_logger
from deriva_ml.cache.policy import normalize_md5, validate_filename
from deriva_ml.core.errors import ChecksumMismatch, StoreError
from deriva_ml.store._files import md5_file as store_md5_file
from deriva_ml.store.port import ObjectStore, ProgressCallback

#: Cached files are read-only.
READ_ONLY = 0o444


def md5_file(path: Path) -> str:
    """Hex MD5 of a file: the store's one hasher (:func:`deriva_ml.store._files.md5_file`) without the length."""
    return store_md5_file(path)[0]


def _on_rm_error(func: Callable[..., Any], path: str, _exc: object) -> None:
    # Read-only files (0o444) cannot be removed on Windows; make them writable and retry.
    try:
        os.chmod(path, stat.S_IWRITE | stat.S_IREAD)
        func(path)
    except FileNotFoundError:
        pass


def remove_tree(path: Path) -> None:
    """Remove a directory tree (or file) if present; read-only files included."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path, onerror=_on_rm_error)


def fetch_verified(
    store: ObjectStore,
    url: str,
    dest: Path,
    md5: str,
    *,
    length: int | None,
    progress: ProgressCallback | None,
    trust_store_md5: bool,
) -> os.stat_result:
    """Have ``store`` write ``url`` to ``dest`` and make sure the bytes hash to ``md5``.

    With ``trust_store_md5=True`` (the default) the MD5 is handed to ``store.get``, which by the
    port's contract (enforced by the store conformance suite; both real stores hash while they copy)
    verifies it in its one copy pass and leaves nothing behind on a mismatch; we skip a second read
    and check only the length. With ``trust_store_md5=False`` we ask the store for the bytes only
    (``md5=None``) and hash the file ourselves afterwards: independent of the store's verification,
    at the cost of one more read pass (the real stores hash during their copy regardless).

    Raises :class:`ChecksumMismatch` (length or MD5) and leaves ``dest`` removed in that case.
    """
    store.get(url, dest, md5=md5 if trust_store_md5 else None, progress=progress)
    try:
        st = os.stat(dest)
    except FileNotFoundError as exc:
        raise StoreError(f"object store did not write {url!r} to {str(dest)!r}") from exc
    try:
        if length is not None and st.st_size != length:
            actual = md5_file(dest)
            raise ChecksumMismatch(f"{url} (expected {length} bytes, got {st.st_size})", md5, actual)
        if not trust_store_md5:
            actual = md5_file(dest)
            if actual != md5:
                raise ChecksumMismatch(url, md5, actual)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return st


def fetch_into_place(
    store: ObjectStore,
    url: str,
    md5: str,
    dest: Path,
    *,
    tmp_parent: Path,
    prefix: str,
    length: int | None,
    progress: ProgressCallback | None,
    trust_store_md5: bool,
    entry_dir: bool = False,
) -> os.stat_result:
    """Download ``url`` to ``dest``, verified, through a fresh temporary directory under ``tmp_parent``.

    ``tmp_parent`` must be on ``dest``'s file system: the bytes land in the temporary directory first
    (:func:`fetch_verified`) and are moved to ``dest`` in one rename only after they matched, so a failed
    or bad download leaves nothing at ``dest``; the temporary directory is removed whatever happens.
    ``entry_dir=True`` (the cache's ``assets/{rid}_{md5}/``): the file is made read-only and ``dest``'s
    directory is emptied and recreated before the move (it may hold what a crash between move and
    index write, or an old eviction, left).
    """
    tmp_parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=prefix, dir=tmp_parent))
    try:
        tmp = tmp_dir / dest.name
        st = fetch_verified(store, url, tmp, md5, length=length, progress=progress, trust_store_md5=trust_store_md5)
        if entry_dir:
            os.chmod(tmp, READ_ONLY)
            remove_tree(dest.parent)
            dest.parent.mkdir(parents=True)
        os.replace(tmp, dest)
    finally:
        remove_tree(tmp_dir)
    return st


def download_uncached(
    url: str,
    md5: str,
    filename: str,
    store: ObjectStore,
    working_dir: Path,
    *,
    length: int | None = None,
    progress: ProgressCallback | None = None,
    trust_store_md5: bool = True,
) -> Path:
    """Download an asset straight into ``working_dir/filename`` and verify it; no cache involved.

    This serves ``AssetSpec(cache=False)`` assets. The bytes land in a temporary directory inside
    ``working_dir`` first and are moved into place only after their MD5 matched, so a failed or bad
    download leaves nothing behind (an existing file of that name is replaced only on success).
    ``trust_store_md5`` as for :class:`~deriva_ml.cache.AssetCache`.
    """
    md5 = normalize_md5(md5)
    dest = Path(working_dir) / validate_filename(filename)
    st = fetch_into_place(
        store,
        url,
        md5,
        dest,
        tmp_parent=dest.parent,
        prefix=".deriva-ml-download-",
        length=length,
        progress=progress,
        trust_store_md5=trust_store_md5,
    )
    _get_logger(__name__).info("asset.downloaded_uncached", url=url, md5=md5, path=str(dest), bytes=st.st_size)
    return dest


def link_into(path: Path, working_dir: Path, name: str | None = None) -> Path:
    """Make ``path`` (a cached file) appear as ``working_dir/name`` and return that path.

    A symbolic link to the absolute cached path is made; where the file system or platform refuses
    symlinks (``OSError`` from :func:`os.symlink`, e.g. Windows without the privilege, FAT, some
    network shares) the file is copied instead — a writable, independent copy — and
    ``cache.link_copied`` is logged. The new name appears atomically. Linking again to the same
    target is a no-op; an existing symlink is replaced; an existing regular file or directory raises
    :class:`FileExistsError` (we never overwrite a user's file).
    """
    src = Path(path).absolute()
    name = validate_filename(name if name is not None else src.name)
    working_dir = Path(working_dir)
    working_dir.mkdir(parents=True, exist_ok=True)
    dest = working_dir / name
    if dest.is_symlink():
        if os.readlink(dest) == str(src):
            return dest
    elif dest.exists():
        raise FileExistsError(
            errno.EEXIST,
            f"will not replace existing file {str(dest)!r} with a link to {str(src)!r}",
            str(dest),
        )
    tmp = working_dir / f".deriva-ml-link-{uuid.uuid4().hex}"
    try:
        try:
            os.symlink(src, tmp)
        except OSError as exc:
            _get_logger(__name__).info("cache.link_copied", src=str(src), dest=str(dest), reason=str(exc))
            shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest
