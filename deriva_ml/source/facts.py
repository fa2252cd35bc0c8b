"""Source detection records: the facts the shell gathers (git, notebook, project, Docker, environment) and
the resolved :class:`SourceInfo`. Frozen attrs records, no behaviour beyond derived properties."""

from __future__ import annotations

import attrs

from deriva_ml.core.fields import str_tuple


@attrs.frozen
class DirtyState:
    """Uncommitted state of a git work tree; every path is repository-relative with ``/``.

    ``modified``: work tree differs from the index (content, mode or type).
    ``deleted``: in the index, missing from the work tree.
    ``staged``: index differs from ``HEAD`` (added, changed or removed in the index).
    ``untracked``: not in the index and not ignored (a nested repository shows as ``dir/``).
    ``conflicted``: unmerged index entries.
    """

    modified: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    deleted: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    staged: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    untracked: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    conflicted: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)

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
    dirty_ignore: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
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
    dirty_paths: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    warnings: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    repo_root: str | None = None


__all__ = [
    "DirtyState",
    "DockerFacts",
    "EnvOverrides",
    "GitFacts",
    "NotebookFacts",
    "ProjectFacts",
    "SourceInfo",
    "TagFacts",
]
