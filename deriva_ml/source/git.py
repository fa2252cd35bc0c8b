"""Git facts through dulwich only (no ``git`` subprocess anywhere in deriva_ml).

Blob ids are computed over the file's *raw bytes* exactly like ``git hash-object --no-filters``:
no ``core.autocrlf``, no ``.gitattributes`` ``text``/``eol``/``filter`` conversion. For a file
without filters this equals ``git hash-object FILE``; for a file with a CRLF-normalising attribute
the id describes the bytes that ran, not the bytes git would store (see docs/source-detection.md).

The dirty check is built for speed on large work trees:

* the index is parsed with one ``struct.unpack_from`` per entry (versions 2 and 3; version 4 and
  SHA-256 repositories fall back to dulwich's reader);
* work tree vs index: ``lstat`` and compare mode, size, mtime and ctime with the index entry;
  the file is hashed only when they differ or the entry is racily clean (mtime not older than the
  index file), as git does;
* index vs ``HEAD``: tree ids are computed from the index entries and compared with ``HEAD``'s
  trees, descending only into subtrees whose ids differ;
* untracked files: one ``os.scandir`` walk that skips ``.git``, never enters ignored directories
  that hold no tracked file and consults ``.gitignore`` (dulwich ``IgnoreFilterManager``, which also
  reads ``.git/info/exclude`` and ``core.excludesFile``) only for paths the index does not know.

Submodules (gitlink entries) are not checked for changes inside them.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

if TYPE_CHECKING:
    from dulwich.objects import Commit, ObjectID
    from dulwich.refs import Ref
    from dulwich.repo import Repo

from deriva_ml.source.detect import DirtyState, TagFacts

CHUNK = 1 << 20  # 1 MiB reads when hashing

S_IFGITLINK = 0o160000

__all__ = [
    "CHUNK",
    "IndexRecord",
    "blob_id",
    "blob_id_of_bytes",
    "commit_count",
    "dirty_state",
    "file_is_dirty",
    "find_repo_root",
    "head_sha",
    "nearest_tag",
    "read_index",
    "remote_url",
]


# --------------------------------------------------------------------------------------------------
# Blob ids
# --------------------------------------------------------------------------------------------------


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
    return _hash_regular(p, st.st_size)


def _hash_regular(p: str | bytes, size: int) -> str:
    if size <= CHUNK:  # one read, no 1 MiB buffer to allocate: most source files (benchmarks/git_ids.py)
        with open(p, "rb") as f:
            data = f.read()
        if len(data) == size:
            return blob_id_of_bytes(data)
        return _hash_regular(p, len(data))  # changed while we read it: hash what is there now
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
        return _hash_regular(p, total)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------
# Repository location
# --------------------------------------------------------------------------------------------------


def find_repo_root(path: str | os.PathLike[str]) -> Path | None:
    """The work tree holding ``path``: the nearest ancestor with a ``.git`` directory or a ``.git``
    file (worktrees, submodules). None outside any repository."""
    p = Path(os.path.abspath(os.fspath(path)))
    start = p if p.is_dir() else p.parent
    for d in (start, *start.parents):
        git = d / ".git"
        if git.is_dir():
            if (git / "HEAD").exists():
                return d
        elif git.is_file():
            try:
                text = git.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            if text.startswith("gitdir:"):
                return d
    return None


def _open(root: str | os.PathLike[str]) -> Repo:
    from dulwich.repo import Repo

    return Repo(os.fspath(root))


def _oid(sha: bytes) -> ObjectID:
    return cast("ObjectID", sha)


def _head(repo: Repo) -> ObjectID | None:
    try:
        return repo.refs[cast("Ref", b"HEAD")]
    except KeyError:
        return None


def head_sha(root: str | os.PathLike[str]) -> str | None:
    """Hex sha of ``HEAD``; None in a repository with no commits."""
    with _open(root) as repo:
        h = _head(repo)
        return h.decode("ascii") if h else None


def _remote(repo: Repo) -> tuple[str, str] | None:
    config = repo.get_config()
    remotes: list[tuple[str, str]] = []
    for section in config.sections():
        if len(section) == 2 and section[0] == b"remote":
            try:
                raw = config.get(section, b"url")
            except KeyError:
                continue
            remotes.append((section[1].decode("utf-8", "replace"), raw.decode("utf-8", "replace")))
    for name, url in remotes:
        if name == "origin":
            return name, url
    return remotes[0] if remotes else None


def remote_url(root: str | os.PathLike[str]) -> str | None:
    """URL of the ``origin`` remote, else of the first remote in the config; None without remotes.

    The URL is returned as configured (it may carry credentials; redact before logging)."""
    with _open(root) as repo:
        r = _remote(repo)
        return r[1] if r else None


# --------------------------------------------------------------------------------------------------
# Index
# --------------------------------------------------------------------------------------------------


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
        return _read_index_dulwich(index_path)
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


def _read_index_dulwich(index_path: str | os.PathLike[str]) -> tuple[list[IndexRecord], list[bytes]]:
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


# --------------------------------------------------------------------------------------------------
# Dirty state
# --------------------------------------------------------------------------------------------------


def _content_changed(full: bytes, e: IndexRecord, st: os.stat_result) -> bool:
    if stat.S_ISLNK(st.st_mode):
        return blob_id_of_bytes(os.readlink(full)) != e.sha.hex()
    return _hash_regular(full, st.st_size) != e.sha.hex()


def _type_changed(e: IndexRecord, st: os.stat_result, filemode: bool) -> bool:
    emode = e.mode & 0o170000
    if stat.S_ISLNK(st.st_mode):
        return emode != stat.S_IFLNK
    if stat.S_ISREG(st.st_mode):
        if emode != stat.S_IFREG:
            return True
        return filemode and bool(st.st_mode & 0o100) != bool(e.mode & 0o100)
    return True


def _tree_ids(entries: list[IndexRecord]) -> dict[bytes, bytes]:
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


def _tree_items(repo: Repo, tree_sha: bytes | None) -> dict[bytes, tuple[int, bytes]]:
    if tree_sha is None:
        return {}
    from dulwich.objects import Tree

    tree = repo.object_store[_oid(tree_sha.hex().encode("ascii"))]
    assert isinstance(tree, Tree)
    return {name: (mode, bytes.fromhex(sha.decode("ascii"))) for name, mode, sha in tree.iteritems()}


def _all_files_head(repo: Repo, tree_sha: bytes, prefix: bytes) -> Iterator[bytes]:
    for name, (mode, sha) in _tree_items(repo, tree_sha).items():
        full = prefix + name
        if stat.S_ISDIR(mode):
            yield from _all_files_head(repo, sha, full + b"/")
        else:
            yield full


def _index_items(entries: list[IndexRecord], ids: dict[bytes, bytes], path: bytes) -> dict[bytes, tuple[int, bytes]]:
    """Children of directory ``path`` in the index: files, and subdirectories with their tree ids."""
    prefix = path + b"/" if path else b""
    items: dict[bytes, tuple[int, bytes]] = {}
    for e in entries:
        if not e.path.startswith(prefix):
            continue
        rest = e.path[len(prefix) :]
        name, sep, _ = rest.partition(b"/")
        if sep:
            items[name] = (stat.S_IFDIR, ids[prefix + name])
        else:
            items[name] = (e.mode, e.sha)
    return items


def _staged(
    repo: Repo,
    entries: list[IndexRecord],
    ids: dict[bytes, bytes],
    path: bytes,
    head_tree: bytes | None,
    out: list[bytes],
) -> None:
    """Paths where the index and HEAD differ, descending only into differing subtrees."""
    idx_items = _index_items(entries, ids, path)
    head_items = _tree_items(repo, head_tree)
    prefix = path + b"/" if path else b""
    for name in idx_items.keys() | head_items.keys():
        i = idx_items.get(name)
        h = head_items.get(name)
        if i == h:
            continue
        full = prefix + name
        i_dir = i is not None and i[0] == stat.S_IFDIR
        h_dir = h is not None and stat.S_ISDIR(h[0])
        if i_dir and h_dir:
            assert h is not None
            _staged(repo, entries, ids, full, h[1], out)
            continue
        if i is not None and i_dir:
            out.extend(e.path for e in entries if e.path.startswith(full + b"/"))
        elif i is not None:
            out.append(full)
        if h is not None and h_dir:
            out.extend(_all_files_head(repo, h[1], full + b"/"))
        elif h is not None:
            out.append(full)


class _Scan(NamedTuple):
    modified: list[bytes]
    deleted: list[bytes]
    untracked: list[bytes]


def _clean_by_stat(e: IndexRecord, st: os.stat_result, index_mtime_ns: int) -> bool:
    """Stat says unchanged: size, mtime, ctime, file type and executable bit agree, and the entry is
    not racily clean (its mtime is older than the index file)."""
    return (
        st.st_size == e.size
        and st.st_mtime_ns == e.mtime_ns
        and st.st_ctime_ns == e.ctime_ns
        and st.st_mtime_ns < index_mtime_ns
        and (st.st_mode ^ e.mode) & 0o170100 == 0
    )


def _scan(
    root_b: bytes,
    entries: list[IndexRecord],
    tracked_dirs: set[bytes],
    index_mtime_ns: int,
    filemode: bool,
    ignore: Any,
    want_untracked: bool,
) -> _Scan:
    """One walk of the work tree: compares every tracked file with its index entry (stat first,
    hash only when stat cannot decide, as git does) and collects untracked, not ignored paths.
    Tracked paths never seen in the walk are the deleted ones."""
    remaining: dict[bytes, IndexRecord] = {e.path: e for e in entries}
    modified: list[bytes] = []
    untracked: list[bytes] = []
    fsdecode = os.fsdecode
    stack: list[bytes] = [b""]
    while stack:
        rel_dir = stack.pop()
        abs_dir = root_b + b"/" + rel_dir if rel_dir else root_b
        try:
            it = os.scandir(abs_dir)
        except OSError:
            continue
        prefix = rel_dir + b"/" if rel_dir else b""
        with it:
            for entry in it:
                name = entry.name
                rel = prefix + name
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    is_dir = False
                if is_dir:
                    if name == b".git":
                        continue
                    if rel in tracked_dirs:
                        stack.append(rel)
                        continue
                    rec = remaining.pop(rel, None)
                    if rec is not None:
                        if rec.mode & 0o170000 == S_IFGITLINK:  # a submodule: not looked into
                            continue
                        modified.append(rel)  # a tracked file became a directory
                    if not want_untracked or ignore.is_ignored(fsdecode(rel) + "/") is True:
                        continue
                    if os.path.lexists(root_b + b"/" + rel + b"/.git"):
                        untracked.append(rel + b"/")  # a nested repository: one entry
                        continue
                    stack.append(rel)
                    continue
                rec = remaining.pop(rel, None)
                if rec is None:
                    if name == b".git" or not want_untracked:
                        continue  # a worktree's or submodule's gitdir file
                    if ignore.is_ignored(fsdecode(rel)) is not True:
                        untracked.append(rel)
                    continue
                if rec.skip or rec.mode & 0o170000 == S_IFGITLINK:
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    remaining[rel] = rec  # vanished while we looked: deleted
                    continue
                if _clean_by_stat(rec, st, index_mtime_ns):
                    continue
                full = root_b + b"/" + rel
                if _type_changed(rec, st, filemode) or st.st_size != rec.size or _content_changed(full, rec, st):
                    modified.append(rel)
    deleted = [p for p, e in remaining.items() if not e.skip and e.mode & 0o170000 != S_IFGITLINK]
    return _Scan(modified, deleted, untracked)


def _d(paths: list[bytes]) -> tuple[str, ...]:
    return tuple(sorted(os.fsdecode(p) for p in paths))


def dirty_state(root: str | os.PathLike[str], *, untracked: bool = True) -> DirtyState:
    """Uncommitted state of the work tree at ``root`` (modified, deleted, staged, untracked,
    conflicted; untracked respects ``.gitignore``, ``.git/info/exclude`` and ``core.excludesFile``).
    ``untracked=False`` walks only directories that hold tracked files and reports no untracked
    paths."""
    from dulwich.ignore import IgnoreFilterManager

    root_s = os.path.abspath(os.fspath(root))
    root_b = os.fsencode(root_s)
    with _open(root_s) as repo:
        index_path = repo.index_path()
        config = repo.get_config()
        filemode = config.get_boolean(b"core", b"filemode", os.name != "nt")
        if _config_str(config, b"extensions", b"objectformat") == "sha256":
            entries, conflicts = _read_index_dulwich(index_path)
        else:
            entries, conflicts = read_index(index_path)
        try:
            index_mtime_ns = os.stat(index_path).st_mtime_ns
        except FileNotFoundError:
            index_mtime_ns = 0

        staged: list[bytes] = []
        head = _head(repo)
        head_tree = bytes.fromhex(_commit(repo, head).tree.decode("ascii")) if head else None
        ids = _tree_ids(entries)
        if (entries or head_tree is not None) and head_tree != ids[b""]:
            _staged(repo, entries, ids, b"", head_tree, staged)

        tracked_dirs = set(ids)  # every directory holding a stage-0 entry (b"" is the root)
        for p in conflicts:
            parent = p.rpartition(b"/")[0]
            while parent and parent not in tracked_dirs:
                tracked_dirs.add(parent)
                parent = parent.rpartition(b"/")[0]
        ignore = IgnoreFilterManager.from_repo(repo) if untracked else None
        conflicted = set(conflicts)
        scan = _scan(root_b, entries, tracked_dirs, index_mtime_ns, filemode, ignore, untracked)
        untracked_paths = [p for p in scan.untracked if p not in conflicted]

    return DirtyState(
        modified=_d(scan.modified),
        deleted=_d(scan.deleted),
        staged=_d(sorted(set(staged))),
        untracked=_d(untracked_paths),
        conflicted=_d(conflicts),
    )


def _config_str(config: Any, section: bytes, name: bytes) -> str | None:
    try:
        return str(config.get(section, name).decode("utf-8", "replace").lower())
    except KeyError:
        return None


def file_is_dirty(state: DirtyState, rel_path: str) -> bool:
    """Whether ``rel_path`` itself is among the dirty paths (or inside an untracked directory)."""
    if rel_path in state.paths:
        return True
    return any(u.endswith("/") and rel_path.startswith(u) for u in state.untracked)


# --------------------------------------------------------------------------------------------------
# Tags and history (for setuptools-scm style versions)
# --------------------------------------------------------------------------------------------------


def _commit(repo: Repo, sha: ObjectID) -> Commit:
    from dulwich.objects import Commit

    obj = repo.object_store[sha]
    assert isinstance(obj, Commit)
    return obj


def _peel(repo: Repo, sha: ObjectID) -> ObjectID | None:
    from dulwich.objects import Commit, Tag

    try:
        obj = repo.object_store[sha]
    except KeyError:
        return None
    while isinstance(obj, Tag):
        obj = repo.object_store[obj.object[1]]
    return obj.id if isinstance(obj, Commit) else None


def nearest_tag(root: str | os.PathLike[str], *, max_commits: int = 100_000) -> TagFacts | None:
    """The tag nearest to ``HEAD`` (first tagged commit in date order from ``HEAD``) and its
    distance (commits reachable from ``HEAD`` but not from the tag, like ``git describe``).
    Only tags that look like versions (setuptools-scm's default ``tag_regex``) count."""
    from deriva_ml.source.detect import tag_to_version

    with _open(root) as repo:
        head = _head(repo)
        if head is None:
            return None
        tagged: dict[bytes, list[str]] = {}
        for ref, sha in repo.refs.as_dict(cast("Ref", b"refs/tags")).items():
            name = ref.decode("utf-8", "replace")
            if tag_to_version(name) is None:
                continue
            commit = _peel(repo, sha)
            if commit is not None:
                tagged.setdefault(commit, []).append(name)
        if not tagged:
            return None
        for entry in repo.get_walker(include=[head], max_entries=max_commits):
            names = tagged.get(entry.commit.id)
            if names:
                best = sorted(names)[-1]
                distance = len(list(repo.get_walker(include=[head], exclude=[entry.commit.id])))
                return TagFacts(tag=best, distance=distance)
        return None


def commit_count(root: str | os.PathLike[str], *, max_commits: int = 1_000_000) -> int:
    """Number of commits reachable from ``HEAD`` (0 without commits)."""
    with _open(root) as repo:
        head = _head(repo)
        if head is None:
            return 0
        return len(list(repo.get_walker(include=[head], max_entries=max_commits)))
