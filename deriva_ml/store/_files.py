"""Small file-system helpers shared by the object stores: hashing and atomic writes."""

from __future__ import annotations

import base64
import binascii
import contextlib
import ctypes
import hashlib
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, BinaryIO, cast

from deriva_ml.core.errors import ChecksumMismatch, StoreError
from deriva_ml.store.port import ProgressCallback

#: Read and write unit: hashlib speed barely depends on it above ~64 KiB (FIELD-NOTES).
IO_CHUNK = 1024 * 1024

EMPTY_MD5 = hashlib.md5(b"").hexdigest()


def md5_hex_to_b64(md5_hex: str) -> str:
    """Hex MD5 (our records) → base64 MD5 (HTTP ``Content-MD5`` headers)."""
    return base64.b64encode(bytes.fromhex(md5_hex)).decode("ascii")


def md5_b64_to_hex(md5_b64: str) -> str | None:
    """Base64 ``Content-MD5`` → hex; also accepts hex (some servers send it); ``None`` if malformed."""
    value = md5_b64.strip()
    if len(value) == 32:
        try:
            bytes.fromhex(value)
            return value.lower()
        except ValueError:
            pass
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 16 else None


def md5_file(path: Path, progress: ProgressCallback | None = None) -> tuple[str, int]:
    """``(hex md5, length)`` of the file at ``path``, read once in 1 MiB chunks."""
    total = path.stat().st_size
    with path.open("rb") as f:
        return md5_stream(f, total, progress)


def md5_stream(f: BinaryIO, total: int = 0, progress: ProgressCallback | None = None) -> tuple[str, int]:
    """``(hex md5, length)`` of what is left to read in ``f``, in 1 MiB chunks (the package's one hasher)."""
    h = hashlib.md5()
    n = 0
    while buf := f.read(IO_CHUNK):
        h.update(buf)
        n += len(buf)
        if progress is not None:
            progress(n, total)
    return h.hexdigest(), n


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (best effort; not every platform can open directories)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush ``path``'s bytes to stable storage."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return cast(Callable[[int], int], fn)


_SYNCFS = _load_syncfs()


def sync_filesystem(path: Path) -> bool:
    """``syncfs(2)``: make everything written to the file system holding ``path`` durable, in one call.

    ``False`` when the platform has no ``syncfs`` or it failed (the caller then fsyncs file by file).
    """
    if _SYNCFS is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        return _SYNCFS(fd) == 0
    finally:
        os.close(fd)


def _text(path: str | os.PathLike[str]) -> str:
    return path if isinstance(path, str) else os.fspath(path)


class PendingSync:
    """Files and directories written without fsync, to be made durable together by :meth:`flush`.

    Thread-safe. ``flush`` makes every recorded file and directory durable: one ``syncfs`` of the file
    system on Linux, else an fsync per file and then one per directory (each directory once).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # kept as strings: hashing a Path builds its case-folded parts each time (most of an add's cost)
        self._files: set[str] = set()
        self._dirs: set[str] = set()

    def __len__(self) -> int:
        with self._lock:
            return len(self._files) + len(self._dirs)

    def add(self, *, files: Iterable[str | os.PathLike[str]] = (), dirs: Iterable[str | os.PathLike[str]] = ()) -> None:
        with self._lock:
            self._files.update(_text(p) for p in files)
            self._dirs.update(_text(p) for p in dirs)

    def flush(self, root: Path, *, syncfs: bool = True) -> int:
        """Make everything recorded durable (``root`` is a directory on the same file system).

        Returns how many sync calls it took. ``syncfs=False`` skips the one-call path (the portable
        fallback: an fsync per file, then per directory).
        """
        with self._lock:
            files, dirs = self._files, self._dirs
            self._files, self._dirs = set(), set()
        if not files and not dirs:
            return 0
        if syncfs and sync_filesystem(root):
            return 1
        for f in sorted(files):
            with contextlib.suppress(FileNotFoundError):  # replaced since (a newer write is recorded too)
                fsync_file(Path(f))
        for d in sorted(dirs, key=lambda p: len(Path(p).parts), reverse=True):  # children before parents
            fsync_dir(Path(d))
        return len(files) + len(dirs)


class FullWriter:
    """An unbuffered file that writes every byte it is given: a short ``write(2)`` is continued, never lost."""

    __slots__ = ("_fd",)

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            done += os.write(self._fd, view[done:])
        return done

    def fileno(self) -> int:
        return self._fd


class _TempNames:
    """Names for temp files, unique per process (pid, a random salt, a counter) without a random draw each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._pid, self._salt, self._count = os.getpid(), os.urandom(4).hex(), 0

    def next(self, prefix: str) -> str:
        with self._lock:
            self._count += 1
            return f"{prefix}{self._pid}.{self._salt}.{self._count}.part"


_TEMP_NAMES = _TempNames()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_TEMP_NAMES._reset)  # a forked child draws its own names


def _create_temp(directory: Path, stem: str) -> tuple[int, str]:
    """A new file (``O_EXCL``) for writing in ``directory``, created with its parents when missing."""
    prefix = os.path.join(directory, f".{stem[:40]}.")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        name = _TEMP_NAMES.next(prefix)
        try:
            return os.open(name, flags, 0o600), name
        except FileNotFoundError:
            directory.mkdir(parents=True, exist_ok=True)  # the first file of a new directory
        except FileExistsError:
            continue  # left by a process that had this pid and salt: take the next name
    raise StoreError(f"cannot create a temporary file in {directory}")


@contextlib.contextmanager
def atomic_file(dest: Path, *, pending: PendingSync | None = None) -> Iterator[FullWriter]:
    """Write ``dest`` atomically: a temp file in the same directory, fsync, then ``os.replace``.

    If the body raises, the temp file is removed and ``dest`` is untouched. With ``pending``, the
    fsyncs are not done here but recorded (``dest`` and its directory) for one later
    :meth:`PendingSync.flush`: the rename is still atomic, only its durability is deferred. The file is
    written unbuffered (callers write whole buffers); the directory is made when missing.
    """
    fd, tmp = _create_temp(dest.parent, dest.name)
    try:
        try:
            yield FullWriter(fd)
            if pending is None:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if pending is None:
        fsync_dir(dest.parent)
    else:
        pending.add(files=[dest], dirs=[dest.parent])


def write_hashed(
    chunks: Iterable[bytes],
    dest: Path,
    *,
    what: object,
    expected_md5: Iterable[str | None] = (),
    expected_length: int | None = None,
    total: int | None = None,
    progress: ProgressCallback | None = None,
    pending: PendingSync | None = None,
) -> tuple[str, int]:
    """Write ``chunks`` to ``dest`` atomically while hashing them; verify before the rename.

    Each non-``None`` entry of ``expected_md5`` must equal the MD5 of the bytes written, else
    :class:`ChecksumMismatch` is raised and nothing is left at ``dest``.
    """
    h = hashlib.md5()
    n = 0
    expected = [m for m in expected_md5 if m]
    with atomic_file(dest, pending=pending) as f:
        for buf in chunks:
            if not buf:
                continue
            f.write(buf)
            h.update(buf)
            n += len(buf)
            if progress is not None:
                progress(n, total if total is not None else n)
        if n == 0 and progress is not None:
            progress(0, total or 0)
        actual = h.hexdigest()
        for m in expected:
            if m.lower() != actual:
                raise ChecksumMismatch(what, m.lower(), actual)
        if expected_length is not None and n != expected_length:
            raise StoreError(f"{what}: expected {expected_length} bytes, got {n} (truncated transfer?)")
    return actual, n


def read_chunks(f: IO[bytes], size: int = IO_CHUNK) -> Iterator[bytes]:
    """Yield ``f``'s bytes in ``size`` pieces."""
    while buf := f.read(size):
        yield buf
