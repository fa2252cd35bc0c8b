"""Git object ids: our streaming ``hashlib`` code against dulwich's own object hashing, same run.

Run by hand: ``uv run python benchmarks/git_ids.py [--mb 256] [--files 2000]``. Issue 13.7: ids go
through dulwich unless this shows dulwich slower; the figures are recorded in ``benchmarks/README.md``.

- blob of one large file: ``deriva_ml.source.git.blob_id`` (sha1 over ``blob <size>\\0`` + 1 MiB reads)
  vs ``dulwich.objects.Blob.from_string(p.read_bytes()).id`` (reads the whole file into memory, then hashes);
- blobs of many small files: the same two;
- tree ids of a repository's index: ``_tree_ids`` (one pass over index entries) vs
  ``dulwich.index.commit_tree`` into a ``MemoryObjectStore`` (builds and hashes ``Tree`` objects).
Every pair is checked to give the same ids, and git itself (``git write-tree``) is the reference.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from dulwich.index import commit_tree
from dulwich.object_store import MemoryObjectStore
from dulwich.objects import Blob

from deriva_ml.source.git import blob_id, read_index
from deriva_ml.source.objects import tree_ids as _tree_ids


def _legacy_blob_id(p: Path) -> str:
    """The small-file path before: a 1 MiB ``bytearray`` allocated per file, unbuffered ``readinto``."""
    size = os.lstat(p).st_size
    h = hashlib.sha1(b"blob %d\0" % size)
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    with open(p, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def best_of(fn: Callable[[], object], n: int = 5) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=256)
    ap.add_argument("--files", type=int, default=2000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        big = root / "big.bin"
        with big.open("wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(args.mb):
                f.write(block)
        assert blob_id(big) == Blob.from_string(big.read_bytes()).id.decode()
        ours = best_of(lambda: blob_id(big), 3)
        theirs = best_of(lambda: Blob.from_string(big.read_bytes()).id, 3)
        print(f"blob id of one {args.mb} MiB file (warm page cache), median of 3:")
        print(f"  ours (streaming hashlib.sha1):  {args.mb / ours:7.0f} MB/s")
        print(f"  dulwich Blob.from_string().id: {args.mb / theirs:7.0f} MB/s  (ours is {theirs / ours:.2f}x faster)")

        repo = root / "repo"
        repo.mkdir()
        paths = []
        for i in range(args.files):
            p = repo / f"d{i % 20}" / f"s{i % 7}" / f"f{i}.txt"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(f"file {i}\n".encode() * (1 + i % 50))
            paths.append(p)
        assert all(blob_id(p) == Blob.from_string(p.read_bytes()).id.decode() for p in paths[:50])
        ours = best_of(lambda: [blob_id(p) for p in paths])
        theirs = best_of(lambda: [Blob.from_string(p.read_bytes()).id for p in paths])
        legacy = best_of(lambda: [_legacy_blob_id(p) for p in paths])
        print(f"blob ids of {args.files} small files (lstat + read + hash), median of 5:")
        print(f"  before (1 MiB buffer per file): {legacy / args.files * 1e6:6.1f} us/file")
        print(f"  ours (one read when <= 1 MiB):  {ours / args.files * 1e6:6.1f} us/file")
        print(
            f"  dulwich Blob.from_string().id:  {theirs / args.files * 1e6:6.1f} us/file  (ours is {theirs / ours:.2f}x faster)"
        )

        env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
        subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
        subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=env)
        git_tree = subprocess.run(
            ["git", "-C", str(repo), "write-tree"], check=True, env=env, capture_output=True, text=True
        ).stdout.strip()
        entries, _ = read_index(repo / ".git" / "index")
        blobs = [(e.path, e.sha.hex().encode(), e.mode) for e in entries]
        assert _tree_ids(entries)[b""].hex() == git_tree
        assert commit_tree(MemoryObjectStore(), blobs).decode() == git_tree
        ours = best_of(lambda: _tree_ids(entries))
        theirs = best_of(lambda: commit_tree(MemoryObjectStore(), blobs))
        print(f"tree ids of an index with {len(entries)} entries (equal to git write-tree), median of 5:")
        print(f"  ours (_tree_ids):              {ours * 1e3:7.2f} ms")
        print(f"  dulwich index.commit_tree:     {theirs * 1e3:7.2f} ms  (ours is {theirs / ours:.2f}x faster)")


if __name__ == "__main__":
    main()
