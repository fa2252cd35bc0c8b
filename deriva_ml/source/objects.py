"""Git object ids computed here, without git: blobs of files and bytes, trees of index entries.

Blob ids are computed over the file's *raw bytes* exactly like ``git hash-object --no-filters``:
no ``core.autocrlf``, no ``.gitattributes`` ``text``/``eol``/``filter`` conversion. For a file
without filters this equals ``git hash-object FILE``; for a file with a CRLF-normalising attribute
the id describes the bytes that ran, not the bytes git would store (see docs/source-detection.md).
Tree ids of every directory of an index are computed in one pass (:func:`tree_ids`), so the dirty
check compares the index with ``HEAD`` tree by tree.
"""

from __future__ import annotations

import hashlib
import os
import stat
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deriva_ml.source.index import IndexRecord

CHUNK = 1 << 20  # 1 MiB reads when hashing


def blob_id_of_bytes(data: bytes) -> str:
    """Git blob id of ``data`` (``sha1(b"blob <size>\\0" + data)``)."""
    h = hashlib.sha1(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def blob_id(path: str | os.PathLike[str]) -> str:
    """Git blob id of a file, streamed in 1 MiB chunks (flat memory); raw bytes, no filters.

    A symbolic link is hashed as git stores it: the bytes of its target.
    """
    p = os.fspath(path)
    st = os.lstat(p)
    if stat.S_ISLNK(st.st_mode):
        return blob_id_of_bytes(os.fsencode(os.readlink(p)))
    return hash_regular(p, st.st_size)


def hash_regular(p: str | bytes, size: int) -> str:
    """Blob id of the regular file ``p`` of ``size`` bytes (re-hashed if it changes while read)."""
    if size <= CHUNK:  # one read, no 1 MiB buffer to allocate: most source files (benchmarks/git_ids.py)
        with open(p, "rb") as f:
            data = f.read()
        if len(data) == size:
            return blob_id_of_bytes(data)
        return hash_regular(p, len(data))  # changed while we read it: hash what is there now
    h = hashlib.sha1(b"blob %d\0" % size)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    total = 0
    with open(p, "rb", buffering=0) as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(view[:n])
            total += n
    if total != size:  # the file changed while we read it: hash what we read, header included
        return hash_regular(p, total)
    return h.hexdigest()


def tree_ids(entries: list[IndexRecord]) -> dict[bytes, bytes]:
    """Tree id (raw) of every directory of the index (b"" is the root), in one pass.

    Index order (bytewise by full path) is git's tree order (a directory sorts as ``name/``), so
    each tree's body can be appended to as entries stream by."""
    ids: dict[bytes, bytes] = {}
    stack: list[tuple[bytes, list[bytes]]] = [(b"", [])]

    def close() -> None:
        d, parts = stack.pop()
        body = b"".join(parts)
        h = hashlib.sha1(b"tree %d\0" % len(body))
        h.update(body)
        sha = h.digest()
        ids[d] = sha
        if stack:
            stack[-1][1].append(b"40000 " + d.rpartition(b"/")[2] + b"\0" + sha)

    for e in entries:
        parent, _, name = e.path.rpartition(b"/")
        top = stack[-1][0]
        if top != parent:
            while True:
                top = stack[-1][0]
                if top == parent or not top or parent.startswith(top + b"/"):
                    break
                close()
            if top != parent:
                cur = top
                for comp in (parent[len(top) + 1 :] if top else parent).split(b"/"):
                    cur = cur + b"/" + comp if cur else comp
                    stack.append((cur, []))
        stack[-1][1].append(b"%o %s\0%s" % (e.mode, name, e.sha))
    while stack:
        close()
    return ids


__all__ = ["CHUNK", "blob_id", "blob_id_of_bytes", "hash_regular", "tree_ids"]
