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

import re
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import PurePosixPath
from urllib.parse import quote, urlsplit

import attrs

from deriva_ml.core.errors import DirtyWorkflow

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
# Records (facts gathered by the shell, and the result)
# --------------------------------------------------------------------------------------------------


def _tuple_of_str(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class DirtyState:
    """Uncommitted state of a git work tree; every path is repository-relative with ``/``.

    ``modified``: work tree differs from the index (content, mode or type).
    ``deleted``: in the index, missing from the work tree.
    ``staged``: index differs from ``HEAD`` (added, changed or removed in the index).
    ``untracked``: not in the index and not ignored (a nested repository shows as ``dir/``).
    ``conflicted``: unmerged index entries.
    """

    modified: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    deleted: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    staged: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    untracked: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    conflicted: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)

    @property
    def paths(self) -> tuple[str, ...]:
        """Every offending path once, sorted."""
        return tuple(sorted(set(self.modified + self.deleted + self.staged + self.untracked + self.conflicted)))

    @property
    def is_dirty(self) -> bool:
        return bool(self.modified or self.deleted or self.staged or self.untracked or self.conflicted)


@attrs.frozen
class TagFacts:
    """The nearest tag reachable from ``HEAD`` (``git describe --tags`` semantics)."""

    tag: str  # tag name without ``refs/tags/``
    distance: int  # commits reachable from HEAD but not from the tag


@attrs.frozen
class GitFacts:
    """What git says about the source file and its repository."""

    repo_root: str  # absolute path of the work tree
    rel_path: str  # path of the source file relative to repo_root, ``/``-separated
    head_sha: str | None  # None in a repository with no commits
    remote_url: str | None  # ``origin``, else the first remote; None if there is none
    dirty: DirtyState = DirtyState()
    file_dirty: bool = False  # the source file itself is modified, staged, untracked or deleted
    tag: TagFacts | None = None  # only gathered when the project uses setuptools-scm / hatch-vcs
    commit_count: int = 0  # commits reachable from HEAD (for the ``0.1.devN`` no-tag version)


@attrs.frozen
class NotebookFacts:
    """A notebook found through the Jupyter server of the running kernel."""

    path: str  # absolute path of the .ipynb file
    stripped_blob_id: str  # git blob id of the nbstripout-normalised notebook


@attrs.frozen
class ProjectFacts:
    """The nearest ``pyproject.toml`` above the source file."""

    path: str
    version: str | None = None  # ``[project].version``
    uses_scm: bool = False  # ``[tool.setuptools_scm]``, or setuptools-scm / hatch-vcs in build requires


@attrs.frozen
class DockerFacts:
    """Provenance baked into a Docker image (``DERIVA_MCP_*``)."""

    image_name: str | None = None
    image_digest: str | None = None
    git_commit: str | None = None
    version: str | None = None


@attrs.frozen
class EnvOverrides:
    """The environment variables that steer detection, parsed."""

    url: str | None = None
    checksum: str | None = None
    allow_dirty: bool | None = None  # None: unset (or unparseable), the parameter decides
    dirty_ignore: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    docker: DockerFacts | None = None  # set only when DERIVA_MCP_IN_DOCKER is true


@attrs.frozen
class SourceInfo:
    """The resolved source of a workflow.

    ``url``: where the code can be read (a browsable blob URL at the commit, ``image@digest``, an
    override, or ``file://``); None only when no source file could be found at all.
    ``checksum``: git blob id of the file (nbstripout-normalised for notebooks), the image digest, or
    an override. ``version``: never None from :func:`resolve_source`; see ``docs/source-detection.md``. ``dirty_paths``: uncommitted paths of
    the repository (after ``DERIVA_ML_DIRTY_CHECK_IGNORE``). ``repo_root``: absolute work-tree path.
    """

    url: str | None
    checksum: str | None
    version: str | None = None
    is_notebook: bool = False
    dirty_paths: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    warnings: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    repo_root: str | None = None


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
# Remote URL -> browsable URL
# --------------------------------------------------------------------------------------------------


@attrs.frozen
class RemoteLocation:
    """A parsed git remote: host (no credentials, no ssh port) and repository path (no ``.git``)."""

    scheme: str  # "https" or "http" (ssh/git remotes map to https)
    host: str  # may carry a port for http(s) remotes
    path: str  # "ORG/REPO" or "GROUP/SUB/REPO"


_SCP_RE = re.compile(r"^(?:(?P<user>[^@/]+)@)?(?P<host>[^:/]+):(?P<path>.+)$")


def parse_remote(remote_url: str) -> RemoteLocation | None:
    """Parse any common git remote form; None for local paths and unparseable values.

    Credentials (``user:token@``) are dropped, the ``.git`` suffix and trailing slashes are removed,
    the port of an ssh remote is dropped (it is not the web port), an http(s) port is kept.
    """
    url = remote_url.strip()
    if not url:
        return None
    if "://" in url:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme in ("file", ""):
            return None
        host = (parts.hostname or "").lower()
        if not host:
            return None
        web_scheme = scheme if scheme in ("http", "https") else "https"
        if web_scheme in ("http", "https"):
            try:
                port = parts.port
            except ValueError:
                port = None
            if port and scheme in ("http", "https") and port not in (80, 443):
                host = f"{host}:{port}"
        path = parts.path
    else:
        m = _SCP_RE.match(url)
        # scp-like syntax needs the colon before any slash, and is not a Windows drive ("C:\...").
        if not m or len(m.group("host")) == 1:
            return None
        host = m.group("host").lower()
        path = m.group("path")
        web_scheme = "https"
    path = path.strip("/")
    path = path.removesuffix(".git").strip("/")
    if path.startswith("~"):  # ssh://host/~user/repo -> user/repo
        path = path[1:]
    if not path:
        return None
    return RemoteLocation(scheme=web_scheme, host=host, path=path)


def _host_kind(host: str) -> str:
    name = host.split(":", 1)[0]
    if name in ("github.com", "www.github.com") or name.endswith(".github.com"):
        return "github"
    if name == "bitbucket.org" or name.startswith("bitbucket."):
        return "bitbucket"
    if name == "gitlab.com" or name.startswith("gitlab.") or ".gitlab." in name:
        return "gitlab"
    if name == "codeberg.org" or name.startswith(("gitea.", "forgejo.")):
        return "gitea"
    return "other"


def browse_url(remote_url: str, sha: str, rel_path: str) -> str | None:
    """Browsable URL of ``rel_path`` at commit ``sha`` in the repository behind ``remote_url``.

    GitHub: ``https://github.com/ORG/REPO/blob/SHA/PATH``; GitLab (also subgroups and self-hosted
    ``gitlab.*``): ``.../-/blob/SHA/PATH``; Bitbucket: ``.../src/SHA/PATH``; Gitea/Forgejo/Codeberg:
    ``.../src/commit/SHA/PATH``; any other host: the GitHub form on https (what most forges and
    GitHub Enterprise accept). None when the remote is a local path.
    """
    loc = parse_remote(remote_url)
    if loc is None:
        return None
    base = f"{loc.scheme}://{loc.host}/{loc.path}"
    path = quote(rel_path.lstrip("/"), safe="/")
    kind = _host_kind(loc.host)
    if kind == "gitlab":
        return f"{base}/-/blob/{sha}/{path}"
    if kind == "bitbucket":
        return f"{base}/src/{sha}/{path}"
    if kind == "gitea":
        return f"{base}/src/commit/{sha}/{path}"
    return f"{base}/blob/{sha}/{path}"


def file_url(path: str) -> str:
    """``file://`` URL of an absolute POSIX path (percent-encoded)."""
    posix = PurePosixPath(path.replace("\\", "/"))
    text = posix.as_posix()
    if not text.startswith("/"):
        text = "/" + text
    return "file://" + quote(text, safe="/:")


def redact_url(url: str) -> str:
    """Drop ``user:password@`` from a URL so it can be logged or recorded."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=netloc).geturl()


# --------------------------------------------------------------------------------------------------
# Version
# --------------------------------------------------------------------------------------------------

_TAG_VERSION_RE = re.compile(r"^(?:[\w-]+-)?(?P<version>[vV]?\d+(?:\.\d+){0,2}[^+]*)(?:\+.*)?$")


def tag_to_version(tag: str) -> str | None:
    """The version a tag names (setuptools-scm's default ``tag_regex``), without a leading ``v``."""
    m = _TAG_VERSION_RE.match(tag)
    if not m:
        return None
    return m.group("version").lstrip("vV")


def _bump(version: str) -> str:
    """setuptools-scm ``guess-next-dev``: increment the last number (``1.2.3`` -> ``1.2.4``,
    ``1.0rc1`` -> ``1.0rc2``); ``.devN`` tags keep their release part."""
    if ".dev" in version:
        return version.split(".dev", 1)[0]
    m = re.match(r"^(.*?)(\d+)$", version)
    if not m:
        return version
    return f"{m.group(1)}{int(m.group(2)) + 1}"


def scm_version(
    tag: TagFacts | None,
    head_sha: str | None,
    *,
    dirty: bool,
    commit_count: int = 0,
    today: date | None = None,
) -> str:
    """A setuptools-scm style version (``guess-next-dev`` + ``node-and-date``).

    clean on a tag: ``1.2.3``; N commits after: ``1.2.4.devN+gSHORT`` (SHORT: 9 hex digits, as setuptools-scm >= 8 writes); dirty: the next version as
    ``.devN`` plus ``+gSHORT.dYYYYMMDD`` (date omitted when ``today`` is None); no tag:
    ``0.1.devN+gSHORT``; no commit: ``0.1.dev0`` (``+dYYYYMMDD`` when dirty).
    """
    if head_sha is None:
        local = f"+d{today:%Y%m%d}" if dirty and today is not None else ""
        return f"0.1.dev0{local}"
    short = head_sha[:9]  # setuptools-scm (>= 8) writes the node as "g" + 9 hex digits
    date_part = f".d{today:%Y%m%d}" if dirty and today is not None else ""
    if tag is None:
        return f"0.1.dev{commit_count}+g{short}{date_part}"
    base = tag_to_version(tag.tag)
    if base is None:
        return f"0.1.dev{commit_count}+g{short}{date_part}"
    if tag.distance == 0 and not dirty:
        return base
    return f"{_bump(base)}.dev{tag.distance}+g{short}{date_part}"


#: The version recorded when nothing better is known (no repository, no ``pyproject.toml`` version, a
#: URL and checksum given by the caller): what setuptools-scm gives a repository without commits.
UNKNOWN_VERSION = "0.1.dev0"


def resolve_version(
    project: ProjectFacts | None, git: GitFacts | None, *, dirty: bool, today: date | None = None
) -> str:
    """Never None, so that a reader of the Workflow row never has to guess (the reference package runs
    setuptools-scm on the *reader's* directory when ``Version`` is NULL):

    1. setuptools-scm style when the project uses setuptools-scm / hatch-vcs and git facts exist;
    2. else ``[project].version`` of the nearest pyproject.toml;
    3. else, for a plain script in a git repository, the same setuptools-scm style version derived from
       the commit (``0.1.devN+gSHORT``, ``.dYYYYMMDD`` when dirty; from the nearest version tag if any);
    4. else :data:`UNKNOWN_VERSION`.
    """
    if project is not None and project.uses_scm and git is not None:
        return scm_version(git.tag, git.head_sha, dirty=dirty, commit_count=git.commit_count, today=today)
    if project is not None and project.version:
        return project.version
    if git is not None:
        return scm_version(git.tag, git.head_sha, dirty=dirty, commit_count=git.commit_count, today=today)
    return UNKNOWN_VERSION


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


__all__ = [
    "UNKNOWN_VERSION",
    "DirtyState",
    "DockerFacts",
    "EnvOverrides",
    "GitFacts",
    "NotebookFacts",
    "ProjectFacts",
    "RemoteLocation",
    "SourceInfo",
    "TagFacts",
    "browse_url",
    "effective_allow_dirty",
    "file_url",
    "filter_dirty",
    "parse_env",
    "parse_remote",
    "redact_url",
    "resolve_source",
    "resolve_version",
    "scm_version",
    "tag_to_version",
]
