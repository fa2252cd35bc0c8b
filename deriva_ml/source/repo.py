"""A git repository through dulwich: where it is, ``HEAD``, its remote, its version tags and history.

Every other git fact (blob ids, the index, the dirty check) builds on :func:`open_repo` and :func:`head`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from dulwich.objects import Commit, ObjectID
    from dulwich.refs import Ref
    from dulwich.repo import Repo

from deriva_ml.source.facts import TagFacts


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


def open_repo(root: str | os.PathLike[str]) -> Repo:
    from dulwich.repo import Repo

    return Repo(os.fspath(root))


def oid(sha: bytes) -> ObjectID:
    return cast("ObjectID", sha)


def head_id(repo: Repo) -> ObjectID | None:
    try:
        return repo.refs[cast("Ref", b"HEAD")]
    except KeyError:
        return None


def head_sha(root: str | os.PathLike[str]) -> str | None:
    """Hex sha of ``HEAD``; None in a repository with no commits."""
    with open_repo(root) as repo:
        h = head_id(repo)
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
    with open_repo(root) as repo:
        r = _remote(repo)
        return r[1] if r else None


def config_str(config: Any, section: bytes, name: bytes) -> str | None:
    try:
        return str(config.get(section, name).decode("utf-8", "replace").lower())
    except KeyError:
        return None


# Tags and history (for setuptools-scm style versions)


def commit_of(repo: Repo, sha: ObjectID) -> Commit:
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
    from deriva_ml.source.version import tag_to_version

    with open_repo(root) as repo:
        head = head_id(repo)
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
    with open_repo(root) as repo:
        head = head_id(repo)
        if head is None:
            return 0
        return len(list(repo.get_walker(include=[head], max_entries=max_commits)))


__all__ = [
    "commit_count",
    "commit_of",
    "config_str",
    "find_repo_root",
    "head_id",
    "head_sha",
    "nearest_tag",
    "oid",
    "open_repo",
    "remote_url",
]
