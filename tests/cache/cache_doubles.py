"""A tiny counting fake of the ObjectStore port (an external port, so a fake is fair game).

It serves objects from a directory, counts ``get`` calls in memory and — for the two-process test —
appends one line per download to a log file (``O_APPEND`` writes of one short line are atomic).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import urllib.parse
from pathlib import Path

from deriva_ml.core.errors import ChecksumMismatch, StoreError
from deriva_ml.store.port import ProgressCallback, StoredObject, UploadOptions


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class CountingStore:
    """Objects live at ``root/<md5>.<quoted filename>``; URLs are ``/hatrac/<table>/<md5>.<quoted>``."""

    def __init__(
        self,
        root: Path,
        *,
        log: Path | None = None,
        delay: float = 0.0,
        honour_md5: bool = True,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.delay = delay
        self.honour_md5 = honour_md5
        self.gets: list[str] = []
        self.get_md5_args: list[str | None] = []
        self.tamper: bytes | None = None  # when set, get() serves these bytes instead

    # the port ------------------------------------------------------------------------------------
    def object_url(self, table: str, md5: str, filename: str) -> str:
        return f"/hatrac/{table}/{md5}.{urllib.parse.quote(filename, safe='')}"

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
        data = Path(path).read_bytes()
        digest = md5_hex(data)
        if md5 is not None and md5 != digest:
            raise ChecksumMismatch(path, md5, digest)
        url = self.object_url(table, digest, filename)
        (self.root / url.rsplit("/", 1)[1]).write_bytes(data)
        return StoredObject(url=url, filename=filename, length=len(data), md5=digest)

    def get(
        self,
        url: str,
        dest: Path,
        *,
        md5: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> Path:
        self.gets.append(url)
        self.get_md5_args.append(md5)
        if self.log is not None:
            fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, f"{os.getpid()} {url}\n".encode())
            finally:
                os.close(fd)
        if self.delay:
            time.sleep(self.delay)
        src = self.root / url.rsplit("/", 1)[1]
        if not src.exists():
            raise StoreError(f"no object at {url!r}")
        part = Path(f"{dest}.part")
        if self.tamper is not None:
            part.write_bytes(self.tamper)
        else:
            shutil.copyfile(src, part)
        if md5 is not None and self.honour_md5:
            actual = md5_hex(part.read_bytes())
            if actual != md5:
                part.unlink()
                raise ChecksumMismatch(url, md5, actual)
        size = part.stat().st_size
        if progress is not None:
            progress(size, size)
        os.replace(part, dest)
        return Path(dest)

    def stat(self, url: str) -> StoredObject | None:
        src = self.root / url.rsplit("/", 1)[1]
        if not src.exists():
            return None
        data = src.read_bytes()
        filename = urllib.parse.unquote(src.name.split(".", 1)[1])
        return StoredObject(url=url, filename=filename, length=len(data), md5=md5_hex(data))

    # helpers -------------------------------------------------------------------------------------
    def add(self, data: bytes, filename: str, table: str = "Asset") -> StoredObject:
        src = self.root / "incoming"
        src.write_bytes(data)
        try:
            return self.put(src, table=table, filename=filename)
        finally:
            src.unlink()


def fetch_in_child(
    cache_dir: str, store_root: str, log: str, url: str, md5: str, filename: str, barrier: object
) -> None:
    """Run in a spawned process: wait for the sibling, then fetch through a fresh cache."""
    from deriva_ml.cache import AssetCache

    store = CountingStore(Path(store_root), log=Path(log), delay=0.5)
    with AssetCache(Path(cache_dir)) as cache:
        barrier.wait()  # type: ignore[attr-defined]
        path = cache.fetch("1-ABC", md5, filename, url, store)
        Path(f"{log}.{os.getpid()}.result").write_text(str(path))
