"""The dirty check: what in a git work tree differs from its index and from ``HEAD``, built for speed.

* the index is read by :func:`deriva_ml.source.index.read_index`;
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

import os
import stat
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from dulwich.repo import Repo

from deriva_ml.source.facts import DirtyState
from deriva_ml.source.index import IndexRecord, read_index, read_index_dulwich
from deriva_ml.source.objects import blob_id_of_bytes, hash_regular, tree_ids
from deriva_ml.source.repo import commit_of, config_str, head_id, oid, open_repo

S_IFGITLINK = 0o160000


def _content_changed(full: bytes, e: IndexRecord, st: os.stat_result) -> bool:
    if stat.S_ISLNK(st.st_mode):
        return blob_id_of_bytes(os.readlink(full)) != e.sha.hex()
    return hash_regular(full, st.st_size) != e.sha.hex()


def _type_changed(e: IndexRecord, st: os.stat_result, filemode: bool) -> bool:
    emode = e.mode & 0o170000
    if stat.S_ISLNK(st.st_mode):
        return emode != stat.S_IFLNK
    if stat.S_ISREG(st.st_mode):
        if emode != stat.S_IFREG:
            return True
        return filemode and bool(st.st_mode & 0o100) != bool(e.mode & 0o100)
    return True


def _tree_items(repo: Repo, tree_sha: bytes | None) -> dict[bytes, tuple[int, bytes]]:
    if tree_sha is None:
        return {}
    from dulwich.objects import Tree

    tree = repo.object_store[oid(tree_sha.hex().encode("ascii"))]
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
    with open_repo(root_s) as repo:
        index_path = repo.index_path()
        config = repo.get_config()
        filemode = config.get_boolean(b"core", b"filemode", os.name != "nt")
        if config_str(config, b"extensions", b"objectformat") == "sha256":
            entries, conflicts = read_index_dulwich(index_path)
        else:
            entries, conflicts = read_index(index_path)
        try:
            index_mtime_ns = os.stat(index_path).st_mtime_ns
        except FileNotFoundError:
            index_mtime_ns = 0

        staged: list[bytes] = []
        head = head_id(repo)
        head_tree = bytes.fromhex(commit_of(repo, head).tree.decode("ascii")) if head else None
        ids = tree_ids(entries)
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


def file_is_dirty(state: DirtyState, rel_path: str) -> bool:
    """Whether ``rel_path`` itself is among the dirty paths (or inside an untracked directory)."""
    if rel_path in state.paths:
        return True
    return any(u.endswith("/") and rel_path.startswith(u) for u in state.untracked)


__all__ = ["S_IFGITLINK", "dirty_state", "file_is_dirty"]
