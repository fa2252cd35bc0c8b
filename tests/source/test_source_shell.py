"""detect_source end to end on real repositories, and caller discovery in real subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import structlog
from source_helpers import commit_all, git, make_repo, write

from deriva_ml.core.errors import DirtyWorkflow
from deriva_ml.source import SourceWarning, detect_source, find_caller_file, project_facts

REMOTE = "https://bob:s3cret@github.com/org/proj.git"
REPO_ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """\
import json, sys
import attrs
from deriva_ml.source import detect_source
info = detect_source(env={k: v for k, v in __import__("os").environ.items()})
print("JSON" + json.dumps(attrs.asdict(info)))
"""


def _quiet(**kw):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info = detect_source(**kw)
    return info, [str(w.message) for w in caught if issubclass(w.category, SourceWarning)]


def test_clean_script_in_github_repo(tmp_path: Path) -> None:
    root = make_repo(
        tmp_path / "proj",
        {"src/train.py": "print('train')\r\n", "pyproject.toml": '[project]\nname="p"\nversion="0.3.1"\n'},
        remote=REMOTE,
    )
    sha = git(root, "rev-parse", "HEAD").strip()
    info, warned = _quiet(caller_file=root / "src" / "train.py", env={})
    assert info.url == f"https://github.com/org/proj/blob/{sha}/src/train.py"
    assert info.checksum == git(root, "hash-object", "src/train.py").strip()
    assert info.version == "0.3.1"
    assert info.dirty_paths == () and warned == [] and info.warnings == ()
    assert info.repo_root == str(root.resolve())


def test_dirty_warns_and_strict_raises(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "proj", {"train.py": "a = 1\n", "lib.py": "b = 1\n"}, remote=REMOTE)
    (root / "lib.py").write_text("b = 2\n")
    with structlog.testing.capture_logs() as logs:
        info, warned = _quiet(caller_file=root / "train.py", env={})
    assert info.dirty_paths == ("lib.py",)
    assert len(warned) == 1 and "lib.py" in warned[0]
    assert any(e["event"] == "workflow source warning" and "lib.py" in e["detail"] for e in logs)
    assert all("s3cret" not in json.dumps(e, default=str) for e in logs)
    with pytest.raises(DirtyWorkflow) as exc:
        detect_source(caller_file=root / "train.py", env={}, allow_dirty=False)
    assert exc.value.paths == ("lib.py",)
    with pytest.raises(DirtyWorkflow):
        detect_source(caller_file=root / "train.py", env={"DERIVA_ML_ALLOW_DIRTY": "false"})


def test_dirty_source_file_keeps_commit_url_and_current_checksum(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "proj", {"train.py": "a = 1\n"}, remote="git@gitlab.com:g/sub/proj.git")
    sha = git(root, "rev-parse", "HEAD").strip()
    (root / "train.py").write_text("a = 2  # edited\n")
    info, warned = _quiet(caller_file=root / "train.py", env={})
    assert info.url == f"https://gitlab.com/g/sub/proj/-/blob/{sha}/train.py"
    assert info.checksum == git(root, "hash-object", "train.py").strip()
    assert "itself differs from the last commit" in warned[0]


def test_ignored_outputs_do_not_make_the_tree_dirty(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "proj", {"train.py": "x\n", ".gitignore": "outputs/\n*.ckpt\n"}, remote=REMOTE)
    write(root, {"outputs/run1/model.pt": "m", "best.ckpt": "c"})
    info = detect_source(caller_file=root / "train.py", env={}, allow_dirty=False)
    assert info.dirty_paths == ()


def test_not_in_a_repository(tmp_path: Path) -> None:
    f = tmp_path / "loose.py"
    f.write_text("x = 1")
    info, warned = _quiet(caller_file=f, env={}, allow_dirty=False)
    assert info.url == f"file://{f.resolve()}"
    assert info.checksum == git(tmp_path, "hash-object", str(f)).strip()
    assert info.repo_root is None and "not in a git repository" in warned[0]


def test_no_remote_and_no_commits(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "proj", {"train.py": "x\n"})
    info, warned = _quiet(caller_file=root / "train.py", env={})
    assert info.url == f"file://{(root / 'train.py').resolve()}" and "no remote" in warned[0]
    fresh = make_repo(tmp_path / "fresh", {"train.py": "x\n"}, commit=False, remote=REMOTE)
    info, warned = _quiet(caller_file=fresh / "train.py", env={})
    assert info.url.startswith("file://") and any("no commits" in w for w in warned)  # type: ignore[union-attr]
    assert info.dirty_paths == ("train.py",)


def test_setuptools_scm_version_from_tags(tmp_path: Path) -> None:
    from dulwich import porcelain

    pyproject = '[build-system]\nrequires = ["setuptools>=64", "setuptools-scm>=8"]\n[project]\nname="p"\n'
    root = make_repo(tmp_path / "proj", {"train.py": "x\n", "pyproject.toml": pyproject}, remote=REMOTE)
    porcelain.tag_create(str(root), "v1.2.3")
    assert detect_source(caller_file=root / "train.py", env={}).version == "1.2.3"
    write(root, {"train.py": "y\n"})
    commit_all(root, "next")
    sha = git(root, "rev-parse", "HEAD").strip()
    assert detect_source(caller_file=root / "train.py", env={}).version == f"1.2.4.dev1+g{sha[:9]}"


def test_project_facts_hatch_vcs_and_nearest(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.hatch.version]\nsource = "vcs"\n')
    (tmp_path / "sub").mkdir()
    facts = project_facts(tmp_path / "sub" / "x.py")
    assert facts is not None and facts.uses_scm and facts.version is None
    assert project_facts(tmp_path / "sub" / "x.py", stop=tmp_path / "sub") is None


def test_overrides_and_docker_skip_git(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "proj", {"train.py": "x\n"}, remote=REMOTE)
    (root / "train.py").write_text("dirty\n")
    env = {"DERIVA_ML_WORKFLOW_URL": "https://h/nb.ipynb", "DERIVA_ML_WORKFLOW_CHECKSUM": "c"}
    info = detect_source(caller_file=root / "train.py", env=env, allow_dirty=False)
    assert (info.url, info.checksum, info.is_notebook) == ("https://h/nb.ipynb", "c", True)
    info = detect_source(caller_file=root / "train.py", env=env, url="https://x/y.py", checksum="z")
    assert (info.url, info.checksum) == ("https://x/y.py", "z")
    docker = {
        "DERIVA_MCP_IN_DOCKER": "true",
        "DERIVA_MCP_IMAGE_NAME": "ghcr.io/org/img",
        "DERIVA_MCP_IMAGE_DIGEST": "sha256:abcd",
        "DERIVA_MCP_GIT_COMMIT": "1234",
        "DERIVA_MCP_VERSION": "2.0.0",
    }
    info = detect_source(caller_file=root / "train.py", env=docker, allow_dirty=False)
    assert (info.url, info.checksum, info.version) == ("ghcr.io/org/img@sha256:abcd", "sha256:abcd", "2.0.0")


# ------------------------------------------------------------------------------------ caller discovery


def test_under_pytest_the_calling_test_file_is_found() -> None:
    assert find_caller_file() == Path(__file__).resolve()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = detect_source(env={})
    assert info.url is not None and info.url.endswith("tests/source/test_source_shell.py")


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> dict:  # type: ignore[type-arg]
    full_env = {**os.environ, **(env or {})}
    full_env.pop("PYTHONPATH", None)
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=full_env, timeout=60)
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("JSON"))
    return json.loads(line[4:])  # type: ignore[no-any-return]


@pytest.fixture
def script_repo(tmp_path: Path) -> tuple[Path, str]:
    root = make_repo(
        tmp_path / "proj",
        {
            "script.py": SCRIPT,
            "pkg/__init__.py": "",
            "pkg/mod.py": SCRIPT,
            "pkg/entry.py": SCRIPT.replace("info = ", "def main():\n    info = ").replace(
                'print("JSON"', '    print("JSON"'
            ),
        },
        remote="git@github.com:org/proj.git",
    )
    return root, git(root, "rev-parse", "HEAD").strip()


def test_python_script_and_dash_m(script_repo: tuple[Path, str]) -> None:
    root, sha = script_repo
    got = _run([sys.executable, "script.py"], root)
    assert got["url"] == f"https://github.com/org/proj/blob/{sha}/script.py"
    assert got["checksum"] == git(root, "hash-object", "script.py").strip()
    assert got["dirty_paths"] == []
    got = _run([sys.executable, "-m", "pkg.mod"], root)
    assert got["url"] == f"https://github.com/org/proj/blob/{sha}/pkg/mod.py"


def test_wrapper_entry_point_falls_back_to_outermost_user_frame(script_repo: tuple[Path, str]) -> None:
    root, sha = script_repo
    # like a console script: __main__ is not the user's file, the user's function is called from it
    got = _run([sys.executable, "-c", "import pkg.entry; pkg.entry.main()"], root)
    assert got["url"] == f"https://github.com/org/proj/blob/{sha}/pkg/entry.py"


@pytest.mark.skipif(shutil.which("uv") is None, reason="uv not on PATH")
def test_uv_run_script(script_repo: tuple[Path, str]) -> None:
    root, sha = script_repo
    got = _run(["uv", "run", "--no-sync", "--project", str(REPO_ROOT), "python", "script.py"], root)
    assert got["url"] == f"https://github.com/org/proj/blob/{sha}/script.py"


def test_strict_env_in_subprocess(script_repo: tuple[Path, str]) -> None:
    root, _ = script_repo
    write(root, {"scratch.txt": "x"})
    env = {**os.environ, "DERIVA_ML_ALLOW_DIRTY": "false"}
    out = subprocess.run([sys.executable, "script.py"], cwd=root, capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode != 0 and "DirtyWorkflow" in out.stderr and "scratch.txt" in out.stderr


def test_plain_git_script_version_equals_setuptools_scm(tmp_path: Path) -> None:
    """A script in a git repository without a pyproject.toml version gets the version setuptools-scm
    itself computes for that repository (clean, dirty, tagged), never None (issue 10.6)."""
    setuptools_scm = pytest.importorskip("setuptools_scm")
    from dulwich import porcelain

    root = make_repo(tmp_path / "proj", {"train.py": "x = 1\n"}, remote=REMOTE)
    write(root, {"train.py": "x = 2\n"})
    commit_all(root, "second")

    def ours() -> str | None:
        return _quiet(caller_file=root / "train.py", env={})[0].version

    def theirs() -> str:
        return str(setuptools_scm.get_version(root=str(root)))

    sha = git(root, "rev-parse", "HEAD").strip()
    assert ours() == theirs() == f"0.1.dev2+g{sha[:9]}"
    write(root, {"train.py": "x = 3\n"})  # a dirty tracked file: setuptools-scm adds .dYYYYMMDD
    assert ours() == theirs()
    assert ours().endswith(".d" + __import__("datetime").date.today().strftime("%Y%m%d"))  # type: ignore[union-attr]
    commit_all(root, "third")
    porcelain.tag_create(str(root), "v1.4.0")
    assert ours() == theirs() == "1.4.0"
    write(root, {"train.py": "x = 4\n"})
    commit_all(root, "fourth")
    assert ours() == theirs() == f"1.4.1.dev1+g{git(root, 'rev-parse', 'HEAD').strip()[:9]}"
    no_repo = tmp_path / "loose" / "train.py"
    write(tmp_path / "loose", {"train.py": "x\n"})
    assert _quiet(caller_file=no_repo, env={})[0].version == "0.1.dev0"
