"""The pure resolver: remote forms, versions, precedence, dirty policy (no I/O)."""

from __future__ import annotations

from datetime import date

import pytest

from deriva_ml.core.errors import DirtyWorkflow
from deriva_ml.source.detect import (
    UNKNOWN_VERSION,
    DirtyState,
    GitFacts,
    NotebookFacts,
    ProjectFacts,
    TagFacts,
    browse_url,
    file_url,
    filter_dirty,
    parse_env,
    parse_remote,
    redact_url,
    resolve_source,
    scm_version,
    tag_to_version,
)

SHA = "0123456789abcdef0123456789abcdef01234567"
GH = f"https://github.com/org/repo/blob/{SHA}/src/train.py"


@pytest.mark.parametrize(
    "remote",
    [
        "https://github.com/org/repo",
        "https://github.com/org/repo.git",
        "https://github.com/org/repo/",
        "https://user:ghp_SECRETTOKEN@github.com/org/repo.git",
        "https://x-access-token:abc@github.com/org/repo",
        "http://github.com/org/repo.git",
        "git@github.com:org/repo.git",
        "git@github.com:org/repo",
        "github.com:org/repo.git",
        "ssh://git@github.com/org/repo.git",
        "ssh://git@github.com:22/org/repo.git",
        "ssh://github.com/org/repo",
        "git+ssh://git@github.com/org/repo.git",
        "git://github.com/org/repo.git",
        "https://GitHub.com/org/repo.git",
    ],
)
def test_github_remote_forms(remote: str) -> None:
    url = browse_url(remote, SHA, "src/train.py")
    expected = GH.replace("https://", "http://") if remote.startswith("http://") else GH
    assert url == expected
    assert "SECRET" not in (url or "") and "abc@" not in (url or "")


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        ("https://gitlab.com/org/repo.git", f"https://gitlab.com/org/repo/-/blob/{SHA}/a/b.py"),
        ("git@gitlab.com:group/sub/repo.git", f"https://gitlab.com/group/sub/repo/-/blob/{SHA}/a/b.py"),
        ("ssh://git@gitlab.example.org:2222/g/r.git", f"https://gitlab.example.org/g/r/-/blob/{SHA}/a/b.py"),
        ("https://oauth2:tok@gitlab.com/g/s/t/repo", f"https://gitlab.com/g/s/t/repo/-/blob/{SHA}/a/b.py"),
        ("https://bitbucket.org/org/repo.git", f"https://bitbucket.org/org/repo/src/{SHA}/a/b.py"),
        ("git@bitbucket.org:org/repo.git", f"https://bitbucket.org/org/repo/src/{SHA}/a/b.py"),
        ("https://codeberg.org/org/repo.git", f"https://codeberg.org/org/repo/src/commit/{SHA}/a/b.py"),
        (
            "https://git.example.org:8443/team/repo.git",
            f"https://git.example.org:8443/team/repo/blob/{SHA}/a/b.py",
        ),
        ("git@git.example.org:team/repo.git", f"https://git.example.org/team/repo/blob/{SHA}/a/b.py"),
    ],
)
def test_other_hosts(remote: str, expected: str) -> None:
    assert browse_url(remote, SHA, "a/b.py") == expected


@pytest.mark.parametrize("remote", ["/srv/git/repo.git", "../repo", "file:///srv/git/repo.git", "C:\\repos\\x", ""])
def test_local_remotes_are_not_browsable(remote: str) -> None:
    assert parse_remote(remote) is None
    assert browse_url(remote, SHA, "a.py") is None


def test_paths_are_percent_encoded() -> None:
    assert browse_url("git@github.com:o/r.git", SHA, "my dir/x#1.py") == (
        f"https://github.com/o/r/blob/{SHA}/my%20dir/x%231.py"
    )
    assert file_url("/tmp/my dir/x.py") == "file:///tmp/my%20dir/x.py"


def test_redact_url() -> None:
    assert redact_url("https://u:p@github.com/o/r") == "https://github.com/o/r"
    assert redact_url("git@github.com:o/r") == "git@github.com:o/r"


@pytest.mark.parametrize(
    ("tag", "version"),
    [
        ("v1.2.3", "1.2.3"),
        ("1.0", "1.0"),
        ("release-2.0.1", "2.0.1"),
        ("V3.1.0rc1", "3.1.0rc1"),
        ("nope", None),
    ],
)
def test_tag_to_version(tag: str, version: str | None) -> None:
    assert tag_to_version(tag) == version


def test_scm_versions() -> None:
    today = date(2024, 5, 6)
    assert scm_version(TagFacts("v1.2.3", 0), SHA, dirty=False) == "1.2.3"
    assert scm_version(TagFacts("v1.2.3", 4), SHA, dirty=False) == "1.2.4.dev4+g012345678"
    assert scm_version(TagFacts("v1.2.3", 0), SHA, dirty=True, today=today) == "1.2.4.dev0+g012345678.d20240506"
    assert scm_version(TagFacts("1.0rc1", 2), SHA, dirty=False) == "1.0rc2.dev2+g012345678"
    assert scm_version(None, SHA, dirty=False, commit_count=7) == "0.1.dev7+g012345678"
    assert scm_version(None, None, dirty=True, today=today) == "0.1.dev0+d20240506"


def test_parse_env() -> None:
    ov = parse_env(
        {
            "DERIVA_ML_WORKFLOW_URL": " https://x ",
            "DERIVA_ML_ALLOW_DIRTY": "FALSE",
            "DERIVA_ML_DIRTY_CHECK_IGNORE": "outputs/:notes.txt::",
            "DERIVA_MCP_IN_DOCKER": "true",
            "DERIVA_MCP_IMAGE_NAME": "ghcr.io/o/r",
        }
    )
    assert ov.url == "https://x" and ov.checksum is None and ov.allow_dirty is False
    assert ov.dirty_ignore == ("outputs/", "notes.txt")
    assert ov.docker is not None and ov.docker.image_name == "ghcr.io/o/r"
    assert parse_env({"DERIVA_MCP_IN_DOCKER": "false"}).docker is None
    assert parse_env({"DERIVA_ML_ALLOW_DIRTY": "maybe"}).allow_dirty is None


def test_filter_dirty() -> None:
    paths = ("outputs/m.pt", "outputsx.py", "src/a.py", "notes.txt", "vendor/lib/")
    assert filter_dirty(paths, ("outputs", "notes.txt", "vendor/lib")) == ("outputsx.py", "src/a.py")


# ------------------------------------------------------------------------------------------ resolve


def _git(dirty: DirtyState = DirtyState(), **kw: object) -> GitFacts:
    base: dict[str, object] = {
        "repo_root": "/work/repo",
        "rel_path": "src/train.py",
        "head_sha": SHA,
        "remote_url": "git@github.com:org/repo.git",
        "dirty": dirty,
        "file_dirty": "src/train.py" in dirty.paths,
    }
    base.update(kw)
    return GitFacts(**base)  # type: ignore[arg-type]


def _resolve(**kw: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = {
        "file_path": "/work/repo/src/train.py",
        "file_checksum": "blobid",
        "git": _git(),
    }
    args.update(kw)
    return resolve_source(**args)  # type: ignore[arg-type]


def test_script_in_clean_repo() -> None:
    info = _resolve(project=ProjectFacts("/work/repo/pyproject.toml", version="0.3.1"))
    assert (info.url, info.checksum, info.version) == (GH, "blobid", "0.3.1")
    assert info.warnings == () and info.dirty_paths == () and info.repo_root == "/work/repo"
    assert not info.is_notebook


def test_version_from_scm_when_project_uses_it() -> None:
    project = ProjectFacts("/work/repo/pyproject.toml", version=None, uses_scm=True)
    info = _resolve(project=project, git=_git(tag=TagFacts("v0.3.0", 2)))
    assert info.version == "0.3.1.dev2+g012345678"


def test_version_is_never_none() -> None:
    """A plain git script (no pyproject.toml version) gets the setuptools-scm version of its commit; with
    nothing to derive one from, UNKNOWN_VERSION (issue 10.6: a NULL Workflow.Version makes the reference
    package run setuptools-scm on the reader's directory)."""
    today = date(2024, 5, 6)
    assert _resolve(project=None, git=_git(commit_count=5)).version == "0.1.dev5+g012345678"
    assert _resolve(project=None, git=_git(tag=TagFacts("v2.0.0", 3))).version == "2.0.1.dev3+g012345678"
    dirty = DirtyState(modified=("src/train.py",))
    assert _resolve(project=None, git=_git(dirty, commit_count=5), today=today).version == (
        "0.1.dev5+g012345678.d20240506"
    )
    # a static [project].version of a project that does not use setuptools-scm still wins
    assert _resolve(project=ProjectFacts("/p/pyproject.toml", version="0.3.1"), git=_git(commit_count=5)).version == (
        "0.3.1"
    )
    assert _resolve(git=None).version == UNKNOWN_VERSION == "0.1.dev0"
    assert _resolve(git=_git(head_sha=None)).version == UNKNOWN_VERSION
    assert _resolve(file_path=None, git=None).version == UNKNOWN_VERSION
    docker = {"DERIVA_MCP_IN_DOCKER": "true", "DERIVA_MCP_IMAGE_NAME": "ghcr.io/o/img"}
    assert _resolve(env=docker).version == UNKNOWN_VERSION
    assert _resolve(url="https://explicit/x.py", checksum="c", git=None).version == UNKNOWN_VERSION


def test_precedence_explicit_over_env_over_docker_over_notebook_over_git() -> None:
    env = {
        "DERIVA_ML_WORKFLOW_URL": "https://env/url",
        "DERIVA_ML_WORKFLOW_CHECKSUM": "envsum",
        "DERIVA_MCP_IN_DOCKER": "true",
        "DERIVA_MCP_IMAGE_NAME": "ghcr.io/o/img",
        "DERIVA_MCP_IMAGE_DIGEST": "sha256:feed",
        "DERIVA_MCP_VERSION": "9.9.9",
    }
    nb = NotebookFacts("/work/repo/src/train.py", "nbsum")
    info = _resolve(env=env, notebook=nb, url="https://explicit", checksum="explicit")
    assert (info.url, info.checksum) == ("https://explicit", "explicit")
    info = _resolve(env=env, notebook=nb)
    assert (info.url, info.checksum, info.version) == ("https://env/url", "envsum", "9.9.9")
    env_docker = {k: v for k, v in env.items() if not k.startswith("DERIVA_ML_")}
    info = _resolve(env=env_docker, notebook=nb)
    assert (info.url, info.checksum, info.version) == ("ghcr.io/o/img@sha256:feed", "sha256:feed", "9.9.9")
    assert info.repo_root is None
    info = _resolve(notebook=nb, file_checksum="nbsum")
    assert info.is_notebook and info.checksum == "nbsum" and info.url == GH


def test_explicit_url_without_checksum_leaves_checksum_empty_with_warning() -> None:
    info = _resolve(url="https://explicit/x.py")
    assert info.url == "https://explicit/x.py" and info.checksum is None
    assert any("without a checksum" in w for w in info.warnings)


def test_explicit_checksum_keeps_detected_url() -> None:
    info = _resolve(checksum="pinned")
    assert (info.url, info.checksum) == (GH, "pinned")
    info = _resolve(env={"DERIVA_ML_WORKFLOW_CHECKSUM": "fromenv"})
    assert (info.url, info.checksum) == (GH, "fromenv")


def test_docker_fallbacks() -> None:
    base = {
        "DERIVA_MCP_IN_DOCKER": "true",
        "DERIVA_MCP_IMAGE_NAME": "ghcr.io/o/img",
        "DERIVA_MCP_VERSION": "1.0",
    }
    info = _resolve(env={**base, "DERIVA_MCP_GIT_COMMIT": "abc123"})
    assert (info.url, info.checksum, info.version) == ("ghcr.io/o/img?commit=abc123", "abc123", "1.0")
    assert any("DERIVA_MCP_IMAGE_DIGEST is not set" in w for w in info.warnings)
    info = _resolve(env=base)
    assert (info.url, info.checksum) == ("ghcr.io/o/img:1.0", None)
    assert info.warnings


def test_dirty_warns_by_default_and_raises_when_strict() -> None:
    dirty = DirtyState(modified=("src/train.py",), untracked=("scratch.py",))
    info = _resolve(git=_git(dirty))
    assert info.dirty_paths == ("scratch.py", "src/train.py")
    assert info.url == GH and info.checksum == "blobid"
    assert any("src/train.py" in w and "scratch.py" in w for w in info.warnings)
    with pytest.raises(DirtyWorkflow) as exc:
        _resolve(git=_git(dirty), allow_dirty=False)
    assert exc.value.paths == ("scratch.py", "src/train.py") and exc.value.repo == "/work/repo"
    with pytest.raises(DirtyWorkflow):
        _resolve(git=_git(dirty), env={"DERIVA_ML_ALLOW_DIRTY": "false"})
    # the environment variable wins over the argument in both directions
    assert _resolve(git=_git(dirty), allow_dirty=False, env={"DERIVA_ML_ALLOW_DIRTY": "true"}).dirty_paths
    # ignored prefixes make a tree clean for provenance
    clean = _resolve(git=_git(dirty), allow_dirty=False, env={"DERIVA_ML_DIRTY_CHECK_IGNORE": "src:scratch.py"})
    assert clean.dirty_paths == () and clean.warnings == ()


def test_warning_names_at_most_ten_paths() -> None:
    dirty = DirtyState(untracked=tuple(f"f{i:02}.py" for i in range(25)))
    (warning,) = _resolve(git=_git(dirty)).warnings
    assert "f09.py" in warning and "f10.py" not in warning and "(+15 more)" in warning


def test_no_repo_no_remote_no_commits_local_remote() -> None:
    info = _resolve(git=None, project=ProjectFacts("/p/pyproject.toml", version="2.0"))
    assert info.url == "file:///work/repo/src/train.py" and info.checksum == "blobid" and info.version == "2.0"
    assert info.repo_root is None and "not in a git repository" in info.warnings[0]
    info = _resolve(git=_git(remote_url=None))
    assert info.url.startswith("file://") and "no remote" in info.warnings[0]  # type: ignore[union-attr]
    info = _resolve(git=_git(head_sha=None))
    assert info.url.startswith("file://") and "no commits" in info.warnings[0]  # type: ignore[union-attr]
    info = _resolve(git=_git(remote_url="/srv/git/repo.git"))
    assert info.url.startswith("file://") and "not a web-hosted" in info.warnings[0]  # type: ignore[union-attr]
    # no repository is never strict
    assert _resolve(git=None, allow_dirty=False).url is not None


def test_no_source_file() -> None:
    info = resolve_source(file_path=None, file_checksum=None)
    assert info.url is None and info.checksum is None and "interactive" in info.warnings[0]


def test_credentials_never_in_warnings() -> None:
    info = _resolve(git=_git(remote_url="https://user:SECRET@internal/x/y.git"))
    assert info.url == f"https://internal/x/y/blob/{SHA}/src/train.py"
    info = _resolve(git=_git(remote_url="file://user:SECRET@/srv/x"))
    assert all("SECRET" not in w for w in info.warnings)
