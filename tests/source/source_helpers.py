"""Helpers for the source-detection tests: real repositories built with dulwich, git CLI as oracle."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from dulwich import porcelain
from dulwich.repo import Repo

AUTHOR = b"Test Author <test@example.org>"
GIT = shutil.which("git")


def make_repo(root: Path, files: dict[str, str | bytes], *, commit: bool = True, remote: str | None = None) -> Path:
    """A repository at ``root`` with ``files`` written (and committed unless ``commit=False``)."""
    root.mkdir(parents=True, exist_ok=True)
    porcelain.init(str(root)).close()
    write(root, files)
    if commit:
        commit_all(root, "initial")
    if remote is not None:
        set_remote(root, "origin", remote)
    return root


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            p.write_text(content, encoding="utf-8", newline="")
        else:
            p.write_bytes(content)


def stage(root: Path, *paths: str) -> None:
    with Repo(str(root)) as repo:
        porcelain.add(repo, [str(root / p) for p in paths])


def commit_all(root: Path, message: str) -> str:
    with Repo(str(root)) as repo:
        # stage everything that is not ignored
        porcelain.add(repo, [str(root)])
        sha = porcelain.commit(repo, message=message, author=AUTHOR, committer=AUTHOR)
    return sha.decode("ascii")


def set_remote(root: Path, name: str, url: str) -> None:
    with Repo(str(root)) as repo:
        porcelain.remote_add(repo, name, url)


def git(root: Path, *args: str, input: bytes | None = None) -> str:
    """Run the real git CLI (test oracle only; the library never does)."""
    assert GIT is not None, "git binary needed as test oracle"
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(root), "GIT_OPTIONAL_LOCKS": "0"}
    out = subprocess.run(
        [GIT, "-c", "core.autocrlf=false", *args],
        cwd=root,
        input=input,
        capture_output=True,
        check=True,
        env=env,
    )
    return out.stdout.decode("utf-8")


def git_status_paths(root: Path) -> set[str]:
    """Paths ``git status --porcelain --untracked-files=all`` reports (the oracle)."""
    out = git(root, "status", "--porcelain", "--untracked-files=all", "--no-renames")
    return {line[3:] for line in out.splitlines() if line}
