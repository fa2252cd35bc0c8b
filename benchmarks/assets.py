"""Asset-cache benchmark (run by hand): ``uv run python benchmarks/assets.py [--size-mb 1024]``.

0. Filling a cache with ``size_limit`` set: ms per miss at 250/1,000/2,000 entries with the running total
   (after) and with the scan of the whole index on every miss that came before it (before), same run.
1. Hit path: 1,000 cached assets fetched again — per-asset milliseconds, with a warm in-process dict
   and with a fresh ``AssetCache`` (index lookups). Target < 2 ms each.
2. Cold miss of one large asset (1 GiB by default) through ``AssetCache.fetch`` against a baseline
   measured in the same run on the same bytes: ``hashlib.md5`` over the file + ``shutil.copyfile``.
   Target >= 50 % of the baseline's throughput. Both verification modes are measured
   (``trust_store_md5=False``: the store copies, we hash; ``True``: the store hashes while copying).

Stores: ``LocalObjectStore`` (``deriva_ml.store.local``; hashes while copying and fsyncs) when it
exists, and a plain copy-only directory store. All runs read the source from a warm page cache.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import structlog

from deriva_ml.cache import AssetCache
from deriva_ml.cache.policy import select_lru_evictions
from deriva_ml.core.errors import ChecksumMismatch
from deriva_ml.store.port import ObjectStore, ProgressCallback, StoredObject, UploadOptions

MiB = 1024 * 1024


class PlainDirStore:
    """Copy-only store: ``get`` is ``shutil.copyfile`` (+ an MD5 pass only when ``md5`` is given)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def object_url(self, table: str, md5: str, filename: str) -> str:
        return f"/hatrac/{table}/{md5}.{urllib.parse.quote(filename, safe='')}"

    def _file(self, url: str) -> Path:
        return self.root / url.rsplit("/", 1)[1]

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
        digest = md5 or md5_of(path)
        url = self.object_url(table, digest, filename)
        shutil.copyfile(path, self._file(url))
        return StoredObject(url=url, filename=filename, length=path.stat().st_size, md5=digest)

    def get(self, url: str, dest: Path, *, md5: str | None = None, progress: ProgressCallback | None = None) -> Path:
        part = Path(f"{dest}.part")
        if md5 is None:
            shutil.copyfile(self._file(url), part)
        else:  # hash while copying, one pass
            h = hashlib.md5(usedforsecurity=False)
            buf = bytearray(MiB)
            view = memoryview(buf)
            with open(self._file(url), "rb", buffering=0) as src, open(part, "wb", buffering=0) as out:
                while n := src.readinto(buf):
                    h.update(view[:n])
                    out.write(view[:n])
            if h.hexdigest() != md5:
                part.unlink()
                raise ChecksumMismatch(url, md5, h.hexdigest())
        os.replace(part, dest)
        return dest

    def stat(self, url: str) -> StoredObject | None:
        return None


def md5_of(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    buf = bytearray(MiB)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def make_big_file(path: Path, size: int) -> None:
    block = os.urandom(64 * MiB)
    with open(path, "wb") as f:
        left = size
        i = 0
        while left > 0:
            chunk = block[: min(left, len(block))]
            # vary each block so the file is not periodic
            f.write(i.to_bytes(8, "little") + chunk[8:])
            left -= len(chunk)
            i += 1


def stores(root: Path) -> dict[str, ObjectStore]:
    found: dict[str, ObjectStore] = {}
    try:
        from deriva_ml.store.local import LocalObjectStore

        found["local"] = LocalObjectStore(root / "local-store")
    except ImportError:
        print("deriva_ml.store.local not available; plain store only", file=sys.stderr)
    found["plain"] = PlainDirStore(root / "plain-store")
    return found


def bench_hits(root: Path, store: ObjectStore, n: int) -> None:
    src = root / "small.bin"
    objs = []
    for i in range(n):
        src.write_bytes(f"asset {i} ".encode() * 100)
        objs.append(store.put(src, table="Asset", filename=f"weights {i}.pt"))
    cache_dir = root / "hit-cache"
    with AssetCache(cache_dir) as cache:
        start = time.perf_counter()
        for i, o in enumerate(objs):
            cache.fetch(f"1-{i:04X}", o.md5, o.filename, o.url, store)
        fill = time.perf_counter() - start
        warm = []
        for _ in range(3):
            start = time.perf_counter()
            for i, o in enumerate(objs):
                cache.fetch(f"1-{i:04X}", o.md5, o.filename, o.url, store)
            warm.append(time.perf_counter() - start)
    cold = []
    for _ in range(3):
        with AssetCache(cache_dir) as fresh:  # empty in-process dict: every hit reads the index
            start = time.perf_counter()
            for i, o in enumerate(objs):
                fresh.fetch(f"1-{i:04X}", o.md5, o.filename, o.url, store)
            cold.append(time.perf_counter() - start)
    print(f"  {n} misses (small files, fill):      {fill / n * 1e3:7.3f} ms/asset")
    print(f"  {n} hits, warm in-process dict:      {statistics.median(warm) / n * 1e3:7.3f} ms/asset")
    print(f"  {n} hits, fresh AssetCache (index):  {statistics.median(cold) / n * 1e3:7.3f} ms/asset")


class ScanPerMissCache(AssetCache):
    """The size-limit check before issue 13.10: every miss sums the sizes of all entries (a scan)."""

    def _enforce_size_limit(self, *, protect: str) -> None:
        if self.size_limit is None:
            return
        chosen = select_lru_evictions(self._index.entries(), self.size_limit, protect=(protect,))
        if chosen:
            self._remove_keys(chosen, reason="size_limit")


def bench_fill_with_limit(root: Path, store: ObjectStore, sizes: tuple[int, ...]) -> None:
    """Misses with ``size_limit`` set (never reached): ms per miss as the cache grows, before vs after."""
    src = root / "fill.bin"
    objs = []
    for i in range(max(sizes)):
        src.write_bytes(f"fill {i} ".encode() * 10)
        objs.append(store.put(src, table="Asset", filename=f"f{i}.bin"))
    for n in sizes:
        row = []
        for label, cls in (("before (scan per miss)", ScanPerMissCache), ("after (running total)", AssetCache)):
            with cls(root / f"fill-{label[:6]}-{n}", size_limit=1 << 40) as cache:
                start = time.perf_counter()
                for i, o in enumerate(objs[:n]):
                    cache.fetch(f"1-{i:04X}", o.md5, o.filename, o.url, store)
                last = time.perf_counter()
                for i, o in enumerate(objs[n - 50 : n]):  # the last 50 misses: cost at this size
                    cache.fetch(f"2-{i:04X}", o.md5, o.filename, o.url, store)
                tail = time.perf_counter() - last
            row.append(f"{label}: fill {last - start:6.2f} s, a miss at {n}: {tail / 50 * 1e3:6.2f} ms")
        print(f"  {n:5d} entries | " + " | ".join(row))


def bench_cold(root: Path, stores_: dict[str, ObjectStore], size: int, repeat: int) -> None:
    big = root / "big.bin"
    print(f"  writing a {size / MiB:.0f} MiB test file ...")
    make_big_file(big, size)
    md5 = md5_of(big)  # also warms the page cache
    mb = size / 1e6

    def baseline() -> None:
        md5_of(big)
        shutil.copyfile(big, root / "baseline.copy")

    base = []
    for _ in range(repeat):
        base.append(timed(baseline))
        (root / "baseline.copy").unlink()
    base_t = statistics.median(base)
    print(f"  baseline md5 + copyfile:                         {mb / base_t:7.0f} MB/s  ({base_t:.2f} s)")

    for name, store in stores_.items():
        obj = store.put(big, table="Model", filename="big model.tar.gz", md5=md5)
        for trust in (False, True):
            runs = []
            for r in range(repeat):
                cache_dir = root / f"cold-{name}-{trust}-{r}"
                with AssetCache(cache_dir, trust_store_md5=trust) as cache:
                    start = time.perf_counter()
                    cache.fetch("1-BIG", obj.md5, obj.filename, obj.url, store)
                    runs.append(time.perf_counter() - start)
                shutil.rmtree(cache_dir, ignore_errors=True)
            t = statistics.median(runs)
            label = f"cache miss, {name} store, trust_store_md5={trust}:"
            print(f"  {label:<48} {mb / t:7.0f} MB/s  ({t:.2f} s)  = {base_t / t * 100:5.1f} % of baseline")
        if name == "local":
            shutil.rmtree(root / "local-store", ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=int, default=1000)
    parser.add_argument("--size-mb", type=int, default=1024, help="cold-miss asset size in MiB")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fill", type=int, nargs="*", default=[250, 1000, 2000], help="cache sizes for the fill")
    parser.add_argument("--only-fill", action="store_true", help="run only the size_limit fill benchmark")
    parser.add_argument("--dir", type=Path, default=None, help="scratch directory (default: a temp dir)")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        found = stores(root)
        print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, scratch {root}")
        first = next(iter(found.values()))
        print(f"Filling a cache with size_limit set ({next(iter(found))} store), same run:")
        (root / "fill").mkdir()
        bench_fill_with_limit(root / "fill", first, tuple(args.fill))
        if args.only_fill:
            return
        print(f"Hit path ({next(iter(found))} store):")
        (root / "hits").mkdir()
        bench_hits(root / "hits", first, args.assets)
        print("Cold miss:")
        bench_cold(root, found, args.size_mb * MiB, args.repeat)


if __name__ == "__main__":
    main()
