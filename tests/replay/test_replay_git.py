"""Finding the recorded code offline and checking it out (real repositories built with dulwich)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "source"))
from source_helpers import commit_all, make_repo, write

from deriva_ml.replay._git import export_commit, locate_source
from deriva_ml.replay.plan import ReplayRefused, check_source, parse_workflow_url
from deriva_ml.source.git import blob_id


def test_a_forge_url_is_found_in_a_local_clone_and_its_blob_checked(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"train.py": "print(1)\n", "pkg/__init__.py": "", "pkg/sub/__init__.py": ""})
    sha = _head(repo)
    loc = parse_workflow_url(f"https://github.com/o/r/blob/{sha}/train.py")
    src = locate_source(loc, blob_id(repo / "train.py"), [tmp_path / "elsewhere", repo / "pkg"])
    assert (src.repo_root, src.commit, src.blob_id) == (str(repo), sha, blob_id(repo / "train.py"))
    assert src.module is None
    check_source(loc, blob_id(repo / "train.py"), src)  # does not raise


def test_a_commit_missing_everywhere_is_refused_naming_where_it_was_looked_for(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"train.py": "x\n"})
    loc = parse_workflow_url(f"https://github.com/o/r/blob/{'e' * 40}/train.py")
    src = locate_source(loc, "b" * 40, [repo])
    assert src.commit is None
    with pytest.raises(ReplayRefused, match=f"cannot find commit {'e' * 40} offline") as err:
        check_source(loc, "b" * 40, src)
    assert str(repo) in str(err.value)


def test_a_dirty_run_is_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"train.py": "seed = 1\n"})
    sha = _head(repo)
    write(repo, {"train.py": "seed = 2  # uncommitted\n"})
    dirty = blob_id(repo / "train.py")  # what a dirty run records as its checksum
    loc = parse_workflow_url(f"https://github.com/o/r/blob/{sha}/train.py")
    src = locate_source(loc, dirty, [repo])
    with pytest.raises(ReplayRefused, match="dirty run"):
        check_source(loc, dirty, src)


def test_a_file_url_finds_the_commit_holding_the_recorded_blob_in_history(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"train.py": "v = 1\n"})
    first = _head(repo)
    recorded = blob_id(repo / "train.py")
    write(repo, {"train.py": "v = 2\n"})
    commit_all(repo, "second")
    loc = parse_workflow_url(f"file://{repo / 'train.py'}")
    src = locate_source(loc, recorded, [])
    assert (src.commit, src.path, src.blob_id) == (first, "train.py", recorded)
    never = locate_source(loc, "f" * 40, [])
    with pytest.raises(ReplayRefused, match=f"a commit holding train.py with blob {'f' * 40}"):
        check_source(loc, "f" * 40, never)


def test_a_file_inside_a_package_runs_as_a_module(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "r", {"src/pkg/__init__.py": "", "src/pkg/sub/__init__.py": "", "src/pkg/sub/train.py": "x = 1\n"}
    )
    sha = _head(repo)
    loc = parse_workflow_url(f"https://github.com/o/r/blob/{sha}/src/pkg/sub/train.py")
    src = locate_source(loc, blob_id(repo / "src/pkg/sub/train.py"), [repo])
    assert (src.module, src.module_root) == ("pkg.sub.train", "src")


def test_export_writes_the_commit_not_the_work_tree(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"a.py": "old\n", "d/b.txt": "b\n", "run.sh": "#!/bin/sh\n"}, commit=False)
    os.chmod(repo / "run.sh", 0o755)
    os.symlink("a.py", repo / "link.py")
    commit_all(repo, "exec bit and link")
    sha = _head(repo)
    write(repo, {"a.py": "new, uncommitted\n", "untracked.py": "u\n"})
    dest = tmp_path / "out"
    n = export_commit(repo, sha, dest)
    assert n == 4
    assert (dest / "a.py").read_text() == "old\n" and (dest / "d/b.txt").read_text() == "b\n"
    assert not (dest / "untracked.py").exists() and not (dest / ".git").exists()
    assert os.stat(dest / "run.sh").st_mode & stat.S_IXUSR
    assert os.readlink(dest / "link.py") == "a.py"


def _head(repo: Path) -> str:
    from dulwich.repo import Repo

    with Repo(str(repo)) as r:
        return r.head().decode("ascii")


def test_a_notebook_is_checked_by_its_stripped_blob(tmp_path: Path) -> None:
    import json

    from deriva_ml.source.notebook import notebook_blob_id

    nb = {
        "cells": [
            {
                "cell_type": "code",
                "id": "c1",
                "execution_count": 3,
                "metadata": {},
                "outputs": [{"name": "stdout", "output_type": "stream", "text": ["1\n"]}],
                "source": ["print(1)"],
            }
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    repo = make_repo(tmp_path / "r", {"nb/fit.ipynb": json.dumps(nb, indent=1)})
    recorded = notebook_blob_id(repo / "nb/fit.ipynb", repo)  # what a notebook run records
    assert recorded != blob_id(repo / "nb/fit.ipynb")  # outputs stripped: not the raw blob
    loc = parse_workflow_url(f"https://github.com/o/r/blob/{_head(repo)}/nb/fit.ipynb")
    src = locate_source(loc, recorded, [repo])
    assert src.blob_id == recorded
    check_source(loc, recorded, src)
