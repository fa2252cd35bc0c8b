"""Reading a git index: the stage-0 entries the dirty check needs, and the conflicted paths.

Versions 2 and 3 are parsed here with one ``struct.unpack_from`` per entry (the hot path on large work
trees); version 4 and SHA-256 repositories fall back to dulwich's reader.
"""

from __future__ import annotations

import os
import struct
from typing import NamedTuple


class IndexRecord(NamedTuple):
    """One stage-0 index entry (the fields the dirty check needs)."""

    path: bytes
    ctime_ns: int
    mtime_ns: int
    mode: int
    size: int
    sha: bytes  # 20 raw bytes
    skip: bool  # assume-valid or skip-worktree: do not look at the work tree


_ENTRY = struct.Struct(">IIIIIIIIII20sH")
_NS = 10**9


def read_index(index_path: str | os.PathLike[str]) -> tuple[list[IndexRecord], list[bytes]]:
    """Parse a git index; returns (stage-0 entries in index order, conflicted paths).

    Versions 2 and 3 are parsed here (fast); anything else goes through dulwich."""
    try:
        with open(index_path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return [], []
    if len(data) < 12 or data[:4] != b"DIRC":
        return [], []
    version, count = struct.unpack_from(">II", data, 4)
    if version not in (2, 3):
        return read_index_dulwich(index_path)
    entries: list[IndexRecord] = []
    conflicts: list[bytes] = []
    off = 12
    unpack = _ENTRY.unpack_from
    append = entries.append
    index_of = data.index
    make = tuple.__new__  # skips NamedTuple's Python-level __new__ (this loop is the hot path)
    for _ in range(count):
        (cs, cn, ms, mn, _dev, _ino, mode, _uid, _gid, size, sha, flags) = unpack(data, off)
        if flags & 0x4000:
            (extended,) = struct.unpack_from(">H", data, off + 62)
            hdr = 64
        else:
            extended = 0
            hdr = 62
        nlen = flags & 0xFFF
        start = off + hdr
        if nlen == 0xFFF:
            nlen = index_of(b"\0", start) - start
        name = data[start : start + nlen]
        off += (hdr + nlen + 8) & ~7
        if flags & 0x3000:
            if not conflicts or conflicts[-1] != name:
                conflicts.append(name)
            continue
        skip = bool(flags & 0x8000 or extended & 0x4000)
        append(make(IndexRecord, (name, cs * _NS + cn, ms * _NS + mn, mode, size, sha, skip)))
    return entries, conflicts


def _ns(t: object) -> int:
    if isinstance(t, tuple):
        return int(t[0]) * _NS + int(t[1])
    return int(float(t) * _NS)  # type: ignore[arg-type]


def read_index_dulwich(index_path: str | os.PathLike[str]) -> tuple[list[IndexRecord], list[bytes]]:
    from dulwich.index import ConflictedIndexEntry, Index

    idx = Index(os.fspath(index_path))
    entries: list[IndexRecord] = []
    conflicts: list[bytes] = []
    for name, e in sorted(idx.items()):
        if isinstance(e, ConflictedIndexEntry):
            conflicts.append(name)
            continue
        skip = bool(e.flags & 0x8000) or bool(e.extended_flags & 0x4000)
        sha = bytes.fromhex(e.sha.decode("ascii")) if len(e.sha) != 20 else e.sha
        entries.append(IndexRecord(name, _ns(e.ctime), _ns(e.mtime), e.mode, e.size, sha, skip))
    return entries, conflicts


__all__ = ["IndexRecord", "read_index", "read_index_dulwich"]
