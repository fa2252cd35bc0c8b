"""What ``deriva-ml replay`` knows of a recorded execution and of its code (frozen records, no I/O).

Filled by the shell (:func:`deriva_ml.replay.run.gather_facts`, :func:`deriva_ml.replay._git.locate_source`)
and read by the pure plan (:mod:`deriva_ml.replay.plan`) and report (:mod:`deriva_ml.replay.report`).
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from deriva_ml.core.fields import as_tuple as _tuple

__all__ = ["AssetFact", "CodeLocation", "ExecutionFacts", "InputDataset", "SourceFacts"]


@attrs.frozen
class CodeLocation:
    """Where a Workflow URL says the code is: ``commit`` + ``path`` in a repository (a browse URL of a
    forge), or a local ``file_path`` without a commit (``file://`` URL: a repository without a remote)."""

    url: str
    path: str
    commit: str | None = None
    repo_hint: str | None = None  # "host/org/repo" of a forge URL, for messages
    file_path: str | None = None  # the absolute path of a file:// URL


@attrs.frozen
class InputDataset:
    rid: str
    version: str | None


@attrs.frozen
class AssetFact:
    """One asset linked to an execution (an input or an output)."""

    table: str
    rid: str
    filename: str
    md5: str | None
    length: int | None = None
    types: tuple[str, ...] = attrs.field(default=(), converter=_tuple)


@attrs.frozen
class ExecutionFacts:
    """What the catalog recorded about one execution (gathered by ``deriva_ml.replay.run.gather_facts``)."""

    rid: str
    status: str
    description: str
    workflow_rid: str | None
    workflow_name: str | None
    workflow_url: str | None
    workflow_checksum: str | None
    is_notebook: bool
    argv: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    config_choices: Mapping[str, str] = attrs.field(factory=dict)
    datasets: tuple[InputDataset, ...] = attrs.field(default=(), converter=_tuple)
    inputs: tuple[AssetFact, ...] = attrs.field(default=(), converter=_tuple)
    outputs: tuple[AssetFact, ...] = attrs.field(default=(), converter=_tuple)
    has_children: bool = False
    lock_md5: str | None = None


@attrs.frozen
class SourceFacts:
    """What the shell found about the recorded code (offline, in local repositories).

    ``repo_root``/``commit``: the repository holding the commit and the commit to check out (None when none
    was found); ``blob_id``: the git blob id of ``path`` at that commit (None when the path is not in it);
    ``searched``: every place that was looked at, for the error message."""

    path: str
    repo_root: str | None
    commit: str | None
    blob_id: str | None
    searched: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    #: the path is inside a Python package at that commit: its module name and the sys.path entry
    #: (relative to the checkout) that imports it
    module: str | None = None
    module_root: str = ""
