"""Workflow versions: setuptools-scm style versions from git facts (``guess-next-dev`` + ``node-and-date``)
and the precedence that picks the recorded version (see ``docs/source-detection.md``). Pure."""

from __future__ import annotations

import re
from datetime import date

from deriva_ml.source.facts import GitFacts, ProjectFacts, TagFacts

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


__all__ = ["UNKNOWN_VERSION", "resolve_version", "scm_version", "tag_to_version"]
