"""deriva_ml.source.git against real repositories (built with dulwich) and the git CLI as oracle."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from source_helpers import commit_all, git, git_status_paths, make_repo, set_remote, stage, write

from deriva_ml.source import git as g

pytestmark = pytest.mark.skipif(not __import__("shutil").which("git"), reason="git CLI oracle missing")


# ---------------------------------------------------------------------------------------------- blobs


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"print('hello')\n",
        b"no trailing newline",
        b"crlf line\r\nanother\r\n",
        b"mixed\r\nlf\nlone cr\r",
        bytes(range(256)) * 10,
        "unicode \u00e9\u4e2d\n".encode(),
    ],
    ids=["empty", "lf", "no-newline", "crlf", "mixed", "binary", "utf8"],
)
def test_blob_id_equals_git_hash_object(tmp_path: Path, content: bytes) -> None:
    f = tmp_path / "f.py"
    f.write_bytes(content)
    expected = git(tmp_path, "hash-object", "--no-filters", str(f)).strip()
    assert g.blob_id(f) == expected
    assert g.blob_id_of_bytes(content) == expected
    # outside a repository with autocrlf off, plain hash-object agrees too
    assert git(tmp_path, "hash-object", str(f)).strip() == expected


def test_blob_id_multi_mb_file_streams(tmp_path: Path) -> None:
    f = tmp_path / "big.bin"
    chunk = os.urandom(1 << 16)
    with open(f, "wb") as fh:
        for _ in range(int(5.5 * 16)):  # 5.5 MiB: several 1 MiB chunks plus a partial one
            fh.write(chunk)
        fh.write(b"tail without newline")
    assert g.blob_id(f) == git(tmp_path, "hash-object", str(f)).strip()


def test_blob_id_of_symlink_is_its_target(tmp_path: Path) -> None:
    (tmp_path / "target.py").write_text("x = 1\n")
    os.symlink("target.py", tmp_path / "link.py")
    expected = git(tmp_path, "hash-object", "--stdin", input=b"target.py").strip()
    assert g.blob_id(tmp_path / "link.py") == expected


# ----------------------------------------------------------------------------------- repo location


def test_find_repo_root_walks_up(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {"src/pkg/mod.py": "x = 1\n"})
    assert g.find_repo_root(root / "src/pkg/mod.py") == root
    assert g.find_repo_root(root / "src/pkg") == root
    assert g.find_repo_root(tmp_path) is None


def test_find_repo_root_of_worktree(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "main", {"a.py": "a = 1\n"})
    git(root, "worktree", "add", "-q", str(tmp_path / "wt"), "-b", "feature")
    wt = tmp_path / "wt"
    assert (wt / ".git").is_file()
    assert g.find_repo_root(wt / "a.py") == wt
    assert g.head_sha(wt) == git(wt, "rev-parse", "HEAD").strip()
    assert g.dirty_state(wt).paths == ()
    (wt / "a.py").write_text("a = 2\n")
    (wt / "new.py").write_text("n = 1\n")
    assert set(g.dirty_state(wt).paths) == git_status_paths(wt) == {"a.py", "new.py"}


def test_head_sha_and_no_commits(tmp_path: Path) -> None:
    empty = make_repo(tmp_path / "empty", {"a.py": "a\n"}, commit=False)
    assert g.head_sha(empty) is None
    assert g.commit_count(empty) == 0
    assert g.nearest_tag(empty) is None
    root = make_repo(tmp_path / "r", {"a.py": "a\n"})
    assert g.head_sha(root) == git(root, "rev-parse", "HEAD").strip()


def test_remote_origin_then_first(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {"a.py": "a\n"})
    assert g.remote_url(root) is None
    set_remote(root, "upstream", "https://github.com/up/stream.git")
    assert g.remote_url(root) == "https://github.com/up/stream.git"
    set_remote(root, "origin", "git@github.com:me/fork.git")
    assert g.remote_url(root) == "git@github.com:me/fork.git"


# ------------------------------------------------------------------------------------------- dirty


def _check(root: Path, expected: set[str]) -> g.DirtyState:
    state = g.dirty_state(root)
    assert set(state.paths) == expected
    assert git_status_paths(root) == expected, "oracle disagrees with the test's expectation"
    return state


def test_clean_repository(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {"a.py": "a\n", "pkg/b.py": "b\n", "pkg/sub/c.txt": "c"})
    _check(root, set())


def test_modified_deleted_staged_untracked(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {"a.py": "a\n", "pkg/b.py": "b\n", "pkg/sub/c.txt": "c", "d.py": "d"})
    (root / "a.py").write_text("changed\n")
    (root / "d.py").unlink()
    write(root, {"pkg/b.py": "staged change\n", "pkg/new_staged.py": "n\n"})
    stage(root, "pkg/b.py", "pkg/new_staged.py")
    write(root, {"untracked.py": "u\n", "newdir/deep/x.py": "x\n"})
    state = _check(
        root,
        {"a.py", "d.py", "pkg/b.py", "pkg/new_staged.py", "untracked.py", "newdir/deep/x.py"},
    )
    assert state.modified == ("a.py",)
    assert state.deleted == ("d.py",)
    assert state.staged == ("pkg/b.py", "pkg/new_staged.py")
    assert state.untracked == ("newdir/deep/x.py", "untracked.py")
    assert g.file_is_dirty(state, "a.py") and not g.file_is_dirty(state, "pkg/sub/c.txt")


def test_staged_removal_and_type_change(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {"a.py": "a\n", "keep.py": "k\n", "dir/f.py": "f\n"})
    git(root, "rm", "-q", "--cached", "a.py")
    (root / "a.py").unlink()
    os.chmod(root / "keep.py", 0o755)
    state = _check(root, {"a.py", "keep.py"})
    assert state.staged == ("a.py",)
    assert state.modified == ("keep.py",)


def test_ignored_files_are_not_dirty(tmp_path: Path) -> None:
    root = make_repo(
        tmp_path / "r",
        {
            ".gitignore": "*.log\nbuild/\n/outputs\n!important.log\n",
            "a.py": "a\n",
            "pkg/.gitignore": "*.tmp\n",
        },
    )
    write(
        root,
        {
            "x.log": "l",
            "build/lib/x.py": "x",
            "outputs/model.pt": "m",
            "pkg/cache.tmp": "t",
            "pkg/sub/deep.log": "d",
            "important.log": "i",
        },
    )
    (root / ".git" / "info").mkdir(exist_ok=True)
    (root / ".git" / "info" / "exclude").write_text("secret.txt\n")
    write(root, {"secret.txt": "s"})
    state = _check(root, {"important.log"})
    assert state.untracked == ("important.log",)


def test_tracked_file_inside_ignored_directory_is_still_checked(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {"a.py": "a\n", "build/keep.py": "k\n"})
    write(root, {".gitignore": "build/\n"})
    commit_all(root, "ignore build")
    (root / "build" / "keep.py").write_text("changed\n")
    write(root, {"build/other.py": "o"})
    _check(root, {"build/keep.py"})


def test_same_size_edit_in_racy_window_is_detected(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {"a.py": "aaaa\n"})
    (root / "a.py").write_text("bbbb\n")  # same size, written right after the commit
    _check(root, {"a.py"})


def test_same_size_edit_with_restored_mtime_is_detected_by_ctime(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {"a.py": "aaaa\n"})
    old = os.stat(root / "a.py")
    time.sleep(0.05)
    git(root, "update-index", "--refresh")  # a git-written index, not racy any more
    time.sleep(0.05)
    (root / "a.py").write_text("bbbb\n")
    os.utime(root / "a.py", ns=(old.st_atime_ns, old.st_mtime_ns))
    assert g.dirty_state(root).modified == ("a.py",)


def test_nested_repository_is_one_untracked_entry(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {"a.py": "a\n"})
    make_repo(root / "vendor" / "lib", {"x.py": "x\n"})
    _check(root, {"vendor/lib/"})


def test_git_written_index_v2_and_v4(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {f"d{i}/f{j}.py": f"{i}{j}\n" for i in range(5) for j in range(5)})
    git(root, "update-index", "--refresh")
    _check(root, set())
    git(root, "update-index", "--index-version", "4")
    _check(root, set())
    (root / "d1" / "f1.py").write_text("changed\n")
    write(root, {"d3/new.py": "n"})
    stage(root, "d3/new.py")
    _check(root, {"d1/f1.py", "d3/new.py"})


def test_unborn_repository_everything_is_staged_or_untracked(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {"a.py": "a\n", "b.py": "b\n"}, commit=False)
    stage(root, "a.py")
    state = _check(root, {"a.py", "b.py"})
    assert state.staged == ("a.py",) and state.untracked == ("b.py",)


def test_conflicted_entries_reported(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {"a.py": "base\n"})
    git(root, "checkout", "-q", "-b", "other")
    (root / "a.py").write_text("other\n")
    git(root, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qam", "other")
    git(root, "checkout", "-q", "-")
    (root / "a.py").write_text("mine\n")
    git(root, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qam", "mine")
    with pytest.raises(Exception):  # noqa: B017 - merge conflict exits non-zero
        git(root, "-c", "user.name=t", "-c", "user.email=t@e", "merge", "-q", "other")
    state = g.dirty_state(root)
    assert state.conflicted == ("a.py",)
    assert "a.py" in state.paths


def test_untracked_false_skips_walk(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {"a.py": "a\n"})
    write(root, {"u.py": "u"})
    assert g.dirty_state(root, untracked=False).paths == ()


# -------------------------------------------------------------------------------------- tags/history


def test_nearest_tag_and_distance(tmp_path: Path) -> None:
    from dulwich import porcelain

    root = make_repo(tmp_path / "r", {"a.py": "1\n"})
    assert g.nearest_tag(root) is None
    porcelain.tag_create(str(root), "v1.2.3", annotated=True, message="rel", author=b"T <t@e>")
    porcelain.tag_create(str(root), "not-a-version")
    assert g.nearest_tag(root) == g.TagFacts(tag="v1.2.3", distance=0)
    write(root, {"a.py": "2\n"})
    commit_all(root, "two")
    write(root, {"a.py": "3\n"})
    commit_all(root, "three")
    assert g.nearest_tag(root) == g.TagFacts(tag="v1.2.3", distance=2)
    assert git(root, "describe", "--tags", "--long", "--match", "v*").startswith("v1.2.3-2-g")
    assert g.commit_count(root) == 3


def test_symlinks_and_file_replaced_by_directory(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {"target.py": "t\n", "was_file": "f\n", "other.py": "o\n"})
    os.symlink("target.py", root / "link.py")
    commit_all(root, "add link")
    _check(root, set())
    (root / "link.py").unlink()
    os.symlink("other.py", root / "link.py")
    (root / "was_file").unlink()
    write(root, {"was_file/inner.py": "i\n"})
    state = g.dirty_state(root)
    assert set(state.paths) == {"link.py", "was_file", "was_file/inner.py"}
    assert {p.rstrip("/") for p in git_status_paths(root)} == {"link.py", "was_file", "was_file/inner.py"}
