"""Pure source resolution: facts in, :class:`SourceInfo` out.

Nothing in this module touches the world: no file system, no ``os.environ``, no clock, no git.
The shell (:func:`deriva_ml.source.detect_source`) gathers the facts (:class:`GitFacts`,
:class:`NotebookFacts`, :class:`ProjectFacts`, the environment as a ``Mapping``) and calls
:func:`resolve_source`, which applies the one precedence order documented in
``docs/source-detection.md``:

1. explicit ``url=`` / ``checksum=`` arguments
2. ``DERIVA_ML_WORKFLOW_URL`` / ``DERIVA_ML_WORKFLOW_CHECKSUM``
3. Docker (``DERIVA_MCP_IN_DOCKER=true``)
4. a Jupyter notebook found through the running Jupyter server
5. the calling script, located in its git repository
6. no repository: a ``file://`` URL and a warning

URL and checksum are resolved independently, each from the first level that supplies it, with one
exception: a URL that comes from level 1 or 2 is never paired with an automatically detected
checksum (that checksum would describe a different file); the checksum is then ``None`` unless
level 1 or 2 gives one too, and a warning says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

from deriva_ml.core.errors import DirtyWorkflow
from deriva_ml.source.facts import DirtyState as DirtyState
from deriva_ml.source.facts import DockerFacts as DockerFacts
from deriva_ml.source.facts import EnvOverrides as EnvOverrides
from deriva_ml.source.facts import GitFacts as GitFacts
from deriva_ml.source.facts import NotebookFacts as NotebookFacts
from deriva_ml.source.facts import ProjectFacts as ProjectFacts
from deriva_ml.source.facts import SourceInfo as SourceInfo
from deriva_ml.source.facts import TagFacts as TagFacts
from deriva_ml.source.remote import RemoteLocation as RemoteLocation
from deriva_ml.source.remote import browse_url as browse_url
from deriva_ml.source.remote import file_url as file_url
from deriva_ml.source.remote import parse_remote as parse_remote
from deriva_ml.source.remote import redact_url as redact_url
from deriva_ml.source.version import UNKNOWN_VERSION as UNKNOWN_VERSION
from deriva_ml.source.version import resolve_version as resolve_version
from deriva_ml.source.version import scm_version as scm_version
from deriva_ml.source.version import tag_to_version as tag_to_version

ENV_WORKFLOW_URL = "DERIVA_ML_WORKFLOW_URL"
ENV_WORKFLOW_CHECKSUM = "DERIVA_ML_WORKFLOW_CHECKSUM"
ENV_ALLOW_DIRTY = "DERIVA_ML_ALLOW_DIRTY"
ENV_DIRTY_CHECK_IGNORE = "DERIVA_ML_DIRTY_CHECK_IGNORE"
ENV_IN_DOCKER = "DERIVA_MCP_IN_DOCKER"
ENV_IMAGE_NAME = "DERIVA_MCP_IMAGE_NAME"
ENV_IMAGE_DIGEST = "DERIVA_MCP_IMAGE_DIGEST"
ENV_GIT_COMMIT = "DERIVA_MCP_GIT_COMMIT"
ENV_VERSION = "DERIVA_MCP_VERSION"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

#: How many dirty paths a warning names before it says "(+N more)".
WARN_PATHS_SHOWN = 10


# --------------------------------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------------------------------


def _env_str(env: Mapping[str, str], key: str) -> str | None:
    value = env.get(key)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _env_bool(env: Mapping[str, str], key: str) -> bool | None:
    value = _env_str(env, key)
    if value is None:
        return None
    low = value.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    return None


def parse_env(env: Mapping[str, str]) -> EnvOverrides:
    """Read the variables that steer detection from ``env`` (a plain mapping, never ``os.environ``
    implicitly). Empty values count as unset."""
    docker = None
    if _env_bool(env, ENV_IN_DOCKER):
        docker = DockerFacts(
            image_name=_env_str(env, ENV_IMAGE_NAME),
            image_digest=_env_str(env, ENV_IMAGE_DIGEST),
            git_commit=_env_str(env, ENV_GIT_COMMIT),
            version=_env_str(env, ENV_VERSION),
        )
    ignore = tuple(p for p in (env.get(ENV_DIRTY_CHECK_IGNORE) or "").split(":") if p.strip())
    return EnvOverrides(
        url=_env_str(env, ENV_WORKFLOW_URL),
        checksum=_env_str(env, ENV_WORKFLOW_CHECKSUM),
        allow_dirty=_env_bool(env, ENV_ALLOW_DIRTY),
        dirty_ignore=ignore,
        docker=docker,
    )


def effective_allow_dirty(allow_dirty: bool, env_allow_dirty: bool | None) -> bool:
    """``DERIVA_ML_ALLOW_DIRTY``, when set to a boolean, wins over the ``allow_dirty`` argument
    (it is the operator's switch: ``false`` makes any run strict, ``true`` lets a strict call run)."""
    return allow_dirty if env_allow_dirty is None else env_allow_dirty


# --------------------------------------------------------------------------------------------------
# Dirty policy
# --------------------------------------------------------------------------------------------------


def filter_dirty(paths: Iterable[str], ignore_prefixes: Iterable[str]) -> tuple[str, ...]:
    """Drop paths equal to, or under, an ignored entry (``outputs`` or ``outputs/`` ignores
    ``outputs/x``; ``notes.txt`` ignores that file)."""
    prefixes = tuple(p.strip().strip("/") for p in ignore_prefixes if p.strip().strip("/"))
    return tuple(p for p in paths if not any(p.rstrip("/") == pre or p.startswith(pre + "/") for pre in prefixes))


def dirty_message(paths: tuple[str, ...], repo_root: str | None, *, file_dirty: bool, rel_path: str) -> str:
    shown = ", ".join(paths[:WARN_PATHS_SHOWN])
    more = f" (+{len(paths) - WARN_PATHS_SHOWN} more)" if len(paths) > WARN_PATHS_SHOWN else ""
    where = f"repository {repo_root}" if repo_root else "the repository"
    head = f"uncommitted changes in {where}: {shown}{more}."
    if file_dirty:
        head += (
            f" The workflow source {rel_path} itself differs from the last commit: the URL points at "
            f"the commit, the checksum at the file as it ran."
        )
    return head + " Commit before running for reproducible provenance"


# --------------------------------------------------------------------------------------------------
# Resolution
# --------------------------------------------------------------------------------------------------


def _docker_source(docker: DockerFacts, warnings: list[str]) -> tuple[str, str | None]:
    """URL and checksum from Docker facts. The URL must be unique per build: ``IMAGE@DIGEST``; without a digest ``IMAGE?commit=SHA``
    (checksum: the commit); with neither, ``IMAGE:VERSION`` or ``IMAGE`` and no checksum."""
    name = docker.image_name
    if name is None:
        warnings.append(f"{ENV_IN_DOCKER}=true but {ENV_IMAGE_NAME} is not set")
        name = "docker://unknown-image"
    if docker.image_digest:
        return f"{name}@{docker.image_digest}", docker.image_digest
    if docker.git_commit:
        warnings.append(f"{ENV_IMAGE_DIGEST} is not set; using {ENV_GIT_COMMIT} as the checksum")
        return f"{name}?commit={docker.git_commit}", docker.git_commit
    warnings.append(f"{ENV_IN_DOCKER}=true but neither {ENV_IMAGE_DIGEST} nor {ENV_GIT_COMMIT} is set")
    tag = f":{docker.version}" if docker.version else ""
    return f"{name}{tag}", None


def _git_url(git: GitFacts, abs_path: str, warnings: list[str]) -> str:
    if git.head_sha is None:
        warnings.append(f"repository {git.repo_root} has no commits; recording a file:// URL")
        return file_url(abs_path)
    if git.remote_url is None:
        warnings.append(f"repository {git.repo_root} has no remote; recording a file:// URL")
        return file_url(abs_path)
    url = browse_url(git.remote_url, git.head_sha, git.rel_path)
    if url is None:
        warnings.append(
            f"remote {redact_url(git.remote_url)!r} is not a web-hosted repository; recording a file:// URL"
        )
        return file_url(abs_path)
    return url


def resolve_source(
    *,
    file_path: str | None,
    file_checksum: str | None,
    git: GitFacts | None = None,
    notebook: NotebookFacts | None = None,
    project: ProjectFacts | None = None,
    env: Mapping[str, str] | None = None,
    url: str | None = None,
    checksum: str | None = None,
    allow_dirty: bool = True,
    today: date | None = None,
) -> SourceInfo:
    """Decide url, checksum and version from gathered facts; pure.

    ``file_path``: absolute path of the source file (the notebook's path when ``notebook`` is set),
    None when none was found (interactive session). ``file_checksum``: git blob id of that file (for a
    notebook: of the stripped notebook). ``git``: facts of the repository holding ``file_path``, None
    outside a repository. ``env``: the environment as a mapping. ``today``: the date used in dirty
    setuptools-scm versions.

    Raises :class:`~deriva_ml.core.errors.DirtyWorkflow` when the repository is dirty and dirty runs
    are not allowed (``allow_dirty=False`` or ``DERIVA_ML_ALLOW_DIRTY=false``; the variable wins).
    """
    ov = parse_env(env or {})
    warnings: list[str] = []
    allow = effective_allow_dirty(allow_dirty, ov.allow_dirty)

    override_url = url or ov.url
    override_checksum = checksum or ov.checksum
    is_notebook = notebook is not None

    # Level 1-2: overrides for the URL. The code location is the caller's assertion; no git checks.
    if override_url is not None:
        if override_checksum is None:
            warnings.append(
                "a workflow URL was given without a checksum; the checksum is left empty (automatic "
                "detection would describe a different file)"
            )
        version = (
            ov.docker.version
            if ov.docker and ov.docker.version
            else resolve_version(project, git, dirty=bool(git and git.dirty.is_dirty), today=today)
        )
        return SourceInfo(
            url=override_url,
            checksum=override_checksum,
            version=version,
            is_notebook=is_notebook or override_url.endswith(".ipynb"),
            warnings=tuple(warnings),
            repo_root=git.repo_root if git else None,
        )

    # Level 3: Docker.
    if ov.docker is not None:
        d_url, d_checksum = _docker_source(ov.docker, warnings)
        return SourceInfo(
            url=d_url,
            checksum=override_checksum or d_checksum,
            version=ov.docker.version or UNKNOWN_VERSION,
            is_notebook=False,
            warnings=tuple(warnings),
            repo_root=None,
        )

    # No source file at all (interactive interpreter without a notebook).
    if file_path is None:
        warnings.append("could not determine the calling source file (interactive session?); pass url= and checksum=")
        return SourceInfo(
            url=None,
            checksum=override_checksum,
            version=resolve_version(project, None, dirty=False, today=today),
            is_notebook=False,
            warnings=tuple(warnings),
        )

    # Levels 4-5: notebook or script inside a git repository.
    if git is not None:
        dirty_paths = filter_dirty(git.dirty.paths, ov.dirty_ignore)
        file_dirty = git.file_dirty and git.rel_path in dirty_paths
        source_url = _git_url(git, file_path, warnings)
        if dirty_paths:
            if not allow:
                raise DirtyWorkflow(dirty_paths, git.repo_root)
            warnings.append(dirty_message(dirty_paths, git.repo_root, file_dirty=file_dirty, rel_path=git.rel_path))
        return SourceInfo(
            url=source_url,
            checksum=override_checksum or file_checksum,
            version=resolve_version(project, git, dirty=bool(dirty_paths), today=today),
            is_notebook=is_notebook,
            dirty_paths=dirty_paths,
            warnings=tuple(warnings),
            repo_root=git.repo_root,
        )

    # Level 6: no repository.
    warnings.append(
        f"{file_path} is not in a git repository; recording a file:// URL (provenance cannot be traced to a commit)"
    )
    return SourceInfo(
        url=file_url(file_path),
        checksum=override_checksum or file_checksum,
        version=resolve_version(project, None, dirty=False, today=today),
        is_notebook=is_notebook,
        warnings=tuple(warnings),
        repo_root=None,
    )


# The records (``facts``), remote URLs (``remote``) and versions (``version``) are re-exported above under
# their own names: ``deriva_ml.source.detect`` stays the one import for the whole pure resolver.
__all__ = ["dirty_message", "effective_allow_dirty", "filter_dirty", "parse_env", "resolve_source"]
