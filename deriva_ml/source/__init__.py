"""deriva_ml.source: where the code of a workflow comes from.

The shell of source detection: :func:`detect_source` gathers facts (the calling file, the Jupyter
notebook, git through dulwich, the nearest ``pyproject.toml``, the environment) and hands them to
the pure :func:`~deriva_ml.source.detect.resolve_source`. See ``docs/source-detection.md``.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import tomllib
import warnings
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from types import FrameType
from typing import Any

from deriva_ml._log import get_logger as _get_logger
from deriva_ml.source import facts
from deriva_ml.source.detect import parse_env, resolve_source
from deriva_ml.source.facts import DirtyState as DirtyState
from deriva_ml.source.facts import DockerFacts as DockerFacts
from deriva_ml.source.facts import EnvOverrides as EnvOverrides
from deriva_ml.source.facts import GitFacts as GitFacts
from deriva_ml.source.facts import NotebookFacts as NotebookFacts
from deriva_ml.source.facts import ProjectFacts as ProjectFacts
from deriva_ml.source.facts import SourceInfo as SourceInfo
from deriva_ml.source.facts import TagFacts as TagFacts
from deriva_ml.source.remote import browse_url, redact_url


class SourceWarning(UserWarning):
    """Provenance of the workflow source is incomplete (dirty tree, no repository, no remote...)."""


# --------------------------------------------------------------------------------------------------
# Caller discovery
# --------------------------------------------------------------------------------------------------


def _library_roots() -> tuple[str, ...]:
    roots: set[str] = {str(Path(__file__).resolve().parent.parent)}  # the deriva_ml package
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        roots.add(os.path.realpath(prefix))
        for key in ("stdlib", "platstdlib", "purelib", "platlib", "scripts"):
            try:
                where = sysconfig.get_path(key, vars={"base": prefix, "platbase": prefix})
                roots.add(os.path.realpath(where))
            except KeyError:
                continue
    return tuple(sorted(roots))


def _is_library(path: str, roots: tuple[str, ...]) -> bool:
    if not path or path.startswith("<"):
        return True
    real = os.path.realpath(path)
    parts = Path(real).parts
    if "site-packages" in parts or "dist-packages" in parts:
        return True
    return any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def find_caller_file(frame: FrameType | None = None) -> Path | None:
    """The file of the program that is running: ``__main__``'s file when it is user code
    (``python script.py``, ``python -m pkg.mod``); otherwise (console scripts, ``uv run`` wrappers,
    pytest) the outermost stack frame whose file is outside deriva_ml, site-packages, the virtual
    environment and the standard library. None in an interactive session."""
    roots = _library_roots()
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    if isinstance(main_file, str) and not _is_library(main_file, roots) and os.path.isfile(main_file):
        return Path(os.path.realpath(main_file))
    f: FrameType | None = frame if frame is not None else sys._getframe(1)
    outermost: str | None = None
    while f is not None:
        name = f.f_code.co_filename
        if not _is_library(name, roots) and os.path.isfile(name):
            outermost = name
        f = f.f_back
    return Path(os.path.realpath(outermost)) if outermost else None


# --------------------------------------------------------------------------------------------------
# Project facts
# --------------------------------------------------------------------------------------------------

_SCM_BUILD_REQUIRES = ("setuptools-scm", "setuptools_scm", "hatch-vcs", "hatch_vcs")


def project_facts(start: str | os.PathLike[str], stop: str | os.PathLike[str] | None = None) -> ProjectFacts | None:
    """The nearest ``pyproject.toml`` at or above ``start`` (a file or directory), not above
    ``stop`` (the repository root) when given; None if there is none or it cannot be parsed."""
    p = Path(os.path.abspath(os.fspath(start)))
    d = p if p.is_dir() else p.parent
    stop_p = Path(os.path.abspath(os.fspath(stop))) if stop is not None else None
    for cand in (d, *d.parents):
        f = cand / "pyproject.toml"
        if f.is_file():
            try:
                with open(f, "rb") as fh:
                    data = tomllib.load(fh)
            except (OSError, tomllib.TOMLDecodeError):
                return None
            project = data.get("project") or {}
            version = project.get("version") if isinstance(project.get("version"), str) else None
            tool = data.get("tool") or {}
            requires = [str(r).lower() for r in (data.get("build-system") or {}).get("requires", [])]
            hatch_source = ((tool.get("hatch") or {}).get("version") or {}).get("source")
            uses_scm = (
                "setuptools_scm" in tool
                or hatch_source == "vcs"
                or any(r.replace(" ", "").startswith(_SCM_BUILD_REQUIRES) for r in requires)
            )
            return ProjectFacts(path=str(f), version=version, uses_scm=uses_scm)
        if stop_p is not None and cand == stop_p:
            return None
    return None


# --------------------------------------------------------------------------------------------------
# Git facts
# --------------------------------------------------------------------------------------------------


def git_facts(path: str | os.PathLike[str], *, dirty: bool = True, tags: bool = False) -> GitFacts | None:
    """Facts about ``path`` and the git repository holding it; None outside a repository.

    ``dirty=False`` skips the dirty check; ``tags=True`` also finds the nearest version tag, or without
    one the commit count (for setuptools-scm style versions)."""
    from deriva_ml.source import git

    real = os.path.realpath(os.fspath(path))
    root = git.find_repo_root(real)
    if root is None:
        return None
    root_s = os.path.realpath(root)
    rel = Path(os.path.relpath(real, root_s)).as_posix()
    head = git.head_sha(root_s)
    state = git.dirty_state(root_s) if dirty else DirtyState()
    tag = git.nearest_tag(root_s) if tags and head else None
    return GitFacts(
        repo_root=root_s,
        rel_path=rel,
        head_sha=head,
        remote_url=git.remote_url(root_s),
        dirty=state,
        file_dirty=git.file_is_dirty(state, rel),
        tag=tag,
        commit_count=git.commit_count(root_s) if tags and head and tag is None else 0,  # only used without a tag
    )


# --------------------------------------------------------------------------------------------------
# The shell entry point
# --------------------------------------------------------------------------------------------------


def detect_source(
    *,
    caller_file: str | os.PathLike[str] | None = None,
    url: str | None = None,
    checksum: str | None = None,
    env: Mapping[str, str] | None = None,
    allow_dirty: bool = True,
) -> SourceInfo:
    """Detect the source of the running workflow: URL, checksum, version, dirty paths.

    ``caller_file``: the source file (a ``.ipynb`` is treated as a notebook); when None, the running
    notebook (inside a Jupyter kernel) or the calling script is found automatically.
    ``url`` / ``checksum``: explicit overrides (highest precedence). ``env``: the environment
    (default ``os.environ``). ``allow_dirty``: when False, uncommitted changes raise
    :class:`~deriva_ml.core.errors.DirtyWorkflow` (``DERIVA_ML_ALLOW_DIRTY``, when set, wins).

    Warnings (dirty tree, no repository, no remote...) are logged with structlog and issued as
    :class:`SourceWarning` (a ``UserWarning``); they are also in ``SourceInfo.warnings``.
    """
    log = _get_logger(__name__)
    env_map: Mapping[str, str] = os.environ if env is None else env
    ov: EnvOverrides = parse_env(env_map)

    # Docker (without a URL override): no repository to look at; provenance comes from the image.
    in_docker = ov.docker is not None and not (url or ov.url)
    notebook_path: Path | None = None
    path: Path | None
    if in_docker:
        path = None
    elif caller_file is not None:
        path = Path(os.path.realpath(os.fspath(caller_file)))
        if path.suffix == ".ipynb":
            notebook_path = path
    else:
        from deriva_ml.source.notebook import find_notebook_path, in_jupyter_kernel

        notebook_path = find_notebook_path(env=env_map) if in_jupyter_kernel() else None
        path = notebook_path or find_caller_file(sys._getframe(1))

    override_url = bool(url or ov.url)
    gfacts: GitFacts | None = None
    project: ProjectFacts | None = None
    file_checksum: str | None = None
    notebook: NotebookFacts | None = None
    if path is not None:
        from deriva_ml.source import git

        root = git.find_repo_root(path)
        project = project_facts(path, root)
        uses_scm = bool(project and project.uses_scm)
        # the version comes from git unless a pyproject.toml that does not use setuptools-scm states it
        needs_tags = uses_scm or not (project and project.version)
        if root is not None:
            gfacts = git_facts(path, dirty=not override_url or needs_tags, tags=needs_tags)
        if not override_url and path.exists():
            if notebook_path is not None:
                from deriva_ml.source.notebook import notebook_blob_id

                file_checksum = notebook_blob_id(path, gfacts.repo_root if gfacts else None)
                notebook = NotebookFacts(path=str(path), stripped_blob_id=file_checksum)
            else:
                file_checksum = git.blob_id(path)

    info = resolve_source(
        file_path=str(path) if path is not None else None,
        file_checksum=file_checksum,
        git=gfacts,
        notebook=notebook,
        project=project,
        env=env_map,
        url=url,
        checksum=checksum,
        allow_dirty=allow_dirty,
        today=date.today(),
    )
    return _report(info, log)


def _report(info: SourceInfo, log: Any) -> SourceInfo:
    for message in info.warnings:
        # the user sees it once, as a warning at their own line; the log keeps it at info level
        log.info("workflow source warning", detail=message, repo_root=info.repo_root)
        warnings.warn(message, SourceWarning, stacklevel=3)
    log.debug(
        "workflow source detected",
        url=redact_url(info.url) if info.url else None,
        checksum=info.checksum,
        version=info.version,
        is_notebook=info.is_notebook,
        dirty=len(info.dirty_paths),
    )
    return info


__all__ = [
    "SourceWarning",
    "browse_url",
    "detect_source",
    "find_caller_file",
    "git_facts",
    "project_facts",
    "resolve_source",
]
__all__ += facts.__all__  # the records, named once (in facts.py)
