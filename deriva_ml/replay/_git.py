"""Finding the recorded code offline and checking it out, with dulwich (no ``git`` subprocess).

Shell code: reads local repositories only (never the network). :func:`locate_source` returns the facts
the pure :func:`deriva_ml.replay.plan.check_source` judges; :func:`export_commit` writes the tree of a
commit into a directory (a plain copy: no ``.git``, so nothing there can be mistaken for the user's
repository).
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

from deriva_ml.replay.facts import CodeLocation, SourceFacts

if TYPE_CHECKING:
    from dulwich.objects import ObjectID
    from dulwich.repo import Repo

#: How many commits of history are searched for a ``file://`` workflow's blob (newest first).
MAX_HISTORY = 20_000


def _repo_roots(candidates: Sequence[str | os.PathLike[str]]) -> list[Path]:
    from deriva_ml.source.git import find_repo_root

    roots: list[Path] = []
    for c in candidates:
        p = Path(os.path.abspath(os.fspath(c)))
        if not p.exists():
            continue
        root = find_repo_root(p)
        if root is not None and root.resolve() not in [r.resolve() for r in roots]:
            roots.append(root)
    return roots


def _blob_at(repo: Repo, commit: bytes, path: str) -> str | None:
    from dulwich.object_store import tree_lookup_path

    obj = repo[cast("ObjectID", commit)]
    tree = getattr(obj, "tree", None)
    if tree is None:
        return None
    try:
        _mode, sha = tree_lookup_path(repo.__getitem__, tree, path.encode("utf-8"))
    except KeyError:
        return None
    return sha.decode("ascii")


def _recorded_id(repo: Repo, root: Path, commit: bytes, path: str) -> str | None:
    """The id a workflow checksum is compared with: the blob id of ``path`` at ``commit``; for a notebook,
    the blob id of its nbstripout-normalised form (what ``deriva_ml.source`` records for notebooks)."""
    blob = _blob_at(repo, commit, path)
    if blob is None or not path.endswith(".ipynb"):
        return blob
    import tempfile

    from deriva_ml.source.notebook import notebook_blob_id

    with tempfile.TemporaryDirectory(prefix="deriva-ml-replay-nb-") as tmp:
        nb = Path(tmp) / posixpath.basename(path)
        nb.write_bytes(repo[cast("ObjectID", blob.encode("ascii"))].as_raw_string())
        return notebook_blob_id(nb, root)


def _has(repo: Repo, commit: bytes, path: str) -> bool:
    return _blob_at(repo, commit, path) is not None


def _module_of(repo: Repo, commit: bytes, path: str) -> tuple[str | None, str]:
    """The module name of ``path`` when its directory is a package at ``commit`` (``__init__.py`` up the
    tree), and the directory (relative to the repository root) to put on ``sys.path``."""
    if not path.endswith(".py"):
        return None, ""
    parts = path[:-3].split("/")
    if parts[-1] == "__init__":
        return None, ""
    depth = 0
    for i in range(len(parts) - 1, 0, -1):
        if _has(repo, commit, "/".join(parts[:i]) + "/__init__.py"):
            depth += 1
        else:
            break
    if depth == 0:
        return None, ""
    root = "/".join(parts[: len(parts) - 1 - depth])
    return ".".join(parts[len(parts) - 1 - depth :]), root


def locate_source(loc: CodeLocation, checksum: str | None, candidates: Sequence[str | os.PathLike[str]]) -> SourceFacts:
    """Find the recorded code in local repositories (``candidates``: directories inside repositories,
    looked at in order). A forge URL names the commit: the first repository holding that commit object
    wins. A ``file://`` URL names no commit: the repository holding the file is searched, newest commit
    first, for a commit whose blob at that path is ``checksum``."""
    from dulwich.repo import Repo

    searched: list[str] = []
    if loc.file_path is not None:
        cands: list[str | os.PathLike[str]] = [posixpath.dirname(loc.file_path), *candidates]
    else:
        cands = list(candidates)
    for root in _repo_roots(cands):
        with Repo(str(root)) as repo:
            if loc.commit is not None:
                searched.append(f"{root} (for commit {loc.commit})")
                sha = loc.commit.encode("ascii")
                if sha not in repo.object_store:  # type: ignore[operator]
                    continue
                blob = _recorded_id(repo, root, sha, loc.path)
                module, mroot = _module_of(repo, sha, loc.path)
                return SourceFacts(loc.path, str(root), loc.commit, blob, searched, module, mroot)
            assert loc.file_path is not None
            try:
                rel = Path(os.path.realpath(loc.file_path)).relative_to(root.resolve()).as_posix()
            except ValueError:
                searched.append(f"{root} (does not hold {loc.file_path})")
                continue
            searched.append(f"{root} (history of {rel}, for blob {checksum})")
            found = _search_history(repo, root, rel, checksum)
            if found is None:
                return SourceFacts(rel, str(root), None, None, searched)
            module, mroot = _module_of(repo, found, rel)
            return SourceFacts(rel, str(root), found.decode("ascii"), checksum, searched, module, mroot)
    path = loc.path
    return SourceFacts(path, None, None, None, searched or [f"{c} (not in a git repository)" for c in cands])


def _search_history(repo: Repo, root: Path, rel: str, checksum: str | None) -> bytes | None:
    if not checksum:
        return None
    try:
        head = repo.refs[b"HEAD"]  # type: ignore[index]
    except KeyError:
        return None
    heads = [head, *(sha for ref, sha in repo.refs.as_dict().items() if ref != b"HEAD")]
    seen: set[bytes] = set()
    for entry in repo.get_walker(include=list(dict.fromkeys(heads)), max_entries=MAX_HISTORY):
        cid = entry.commit.id
        if cid in seen:
            continue
        seen.add(cid)
        if _recorded_id(repo, root, cid, rel) == checksum:
            return bytes(cid)
    return None


def export_commit(repo_root: str | os.PathLike[str], commit: str, dest: Path) -> int:
    """Write every file of ``commit`` under ``dest`` (modes: executable bits and symbolic links kept;
    submodules left empty). Returns the number of files written."""
    from dulwich.object_store import iter_tree_contents
    from dulwich.repo import Repo

    n = 0
    with Repo(os.fspath(repo_root)) as repo:
        obj = repo[cast("ObjectID", commit.encode("ascii"))]
        for entry in iter_tree_contents(repo.object_store, obj.tree):  # type: ignore[attr-defined]
            if entry.path is None or entry.mode is None or entry.sha is None:
                continue
            target = dest / os.fsdecode(entry.path)
            if entry.mode == 0o160000:  # a submodule: its commit is not in this repository
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            data = repo[entry.sha].as_raw_string()
            if stat.S_ISLNK(entry.mode):
                os.symlink(os.fsdecode(data), target)
            else:
                target.write_bytes(data)
                if entry.mode & 0o111:
                    target.chmod(0o755)
            n += 1
    return n
