"""The reproducibility report of ``deriva-ml replay`` (pure): outputs of the original and of the replay
paired by (asset table, file name) and compared by MD5; the library's own metadata files are left out.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Any

import attrs

from deriva_ml.core.fields import as_tuple as _tuple
from deriva_ml.replay.facts import AssetFact
from deriva_ml.replay.link import LINK_PATTERN

__all__ = [
    "EXECUTED_NOTEBOOK",
    "LIBRARY_METADATA",
    "FileComparison",
    "ReplayReport",
    "comparable_outputs",
    "compare_outputs",
    "is_library_metadata",
    "render_report",
]

#: Files the library itself writes into every execution's ``Execution_Metadata``: they describe the run
#: (time stamps, configuration, environment), not its results, and are left out of the comparison.
LIBRARY_METADATA = (
    "configuration.json",
    "uv.lock",
    "environment_snapshot_*.txt",
    "hydra-*-config.yaml",
    "hydra-*-overrides.yaml",
    "hydra-*-hydra.yaml",
    LINK_PATTERN,
)

#: The executed notebook ``deriva-ml-run-notebook`` uploads (``Notebook_Output``): a record of the run whose
#: cell timings and kernel metadata differ on every run; its results are the notebook's other outputs.
EXECUTED_NOTEBOOK = "*.ipynb"


@attrs.frozen
class FileComparison:
    table: str
    filename: str
    original_md5: str | None
    replay_md5: str | None

    @property
    def outcome(self) -> str:
        """``equal``, ``differs``, ``missing`` (the replay did not write it) or ``new`` (only the replay did)."""
        if self.replay_md5 is None:
            return "missing"
        if self.original_md5 is None:
            return "new"
        return "equal" if self.original_md5 == self.replay_md5 else "differs"


@attrs.frozen
class ReplayReport:
    original_rid: str
    replay_rid: str | None
    status: str
    files: tuple[FileComparison, ...] = attrs.field(converter=_tuple)
    warnings: tuple[str, ...] = attrs.field(default=(), converter=_tuple)

    @property
    def reproduced(self) -> bool:
        """Every output of the original has an output of the replay with the same MD5, and nothing more."""
        return self.status == "Completed" and bool(self.files) and all(f.outcome == "equal" for f in self.files)

    @property
    def differing(self) -> tuple[FileComparison, ...]:
        return tuple(f for f in self.files if f.outcome != "equal")

    def to_json(self) -> dict[str, Any]:
        return {
            "original": self.original_rid,
            "replay": self.replay_rid,
            "status": self.status,
            "reproduced": self.reproduced,
            "files": [{**attrs.asdict(f), "outcome": f.outcome} for f in self.files],
            "warnings": list(self.warnings),
        }


def is_library_metadata(asset: AssetFact) -> bool:
    """A file the library writes for every execution (configuration, environment, the executed notebook...):
    it describes the run, not its results."""
    if asset.table == "Execution_Asset" and fnmatch.fnmatchcase(asset.filename, EXECUTED_NOTEBOOK):
        return True
    return asset.table == "Execution_Metadata" and any(fnmatch.fnmatchcase(asset.filename, p) for p in LIBRARY_METADATA)


def comparable_outputs(outputs: Sequence[AssetFact]) -> tuple[AssetFact, ...]:
    return tuple(a for a in outputs if not is_library_metadata(a))


def compare_outputs(
    original_rid: str,
    original: Sequence[AssetFact],
    replay_rid: str | None,
    replay: Sequence[AssetFact],
    *,
    status: str,
    warnings: Sequence[str] = (),
) -> ReplayReport:
    """Pair outputs by (asset table, file name) and compare their MD5s; library metadata is left out.

    A name written several times by one run is paired in the order of the MD5s (a multiset match)."""
    left: dict[tuple[str, str], list[str | None]] = {}
    right: dict[tuple[str, str], list[str | None]] = {}
    for a in comparable_outputs(original):
        left.setdefault((a.table, a.filename), []).append(a.md5)
    for a in comparable_outputs(replay):
        right.setdefault((a.table, a.filename), []).append(a.md5)
    files: list[FileComparison] = []
    for key in sorted(set(left) | set(right)):
        lm = sorted(left.get(key, []), key=str)
        rm = sorted(right.get(key, []), key=str)
        common = [m for m in lm if m in rm]
        for m in common:
            rm.remove(m)
            lm.remove(m)
            files.append(FileComparison(key[0], key[1], m, m))
        for i in range(max(len(lm), len(rm))):
            files.append(FileComparison(key[0], key[1], lm[i] if i < len(lm) else None, rm[i] if i < len(rm) else None))
    return ReplayReport(original_rid, replay_rid, status, files, warnings)


def render_report(report: ReplayReport) -> list[str]:
    """The report as text: one line per output file, then the verdict."""
    out = [f"replay of {report.original_rid}: execution {report.replay_rid or '(none)'}  {report.status}"]
    if report.files:
        wt = max(len(f.table) for f in report.files)
        wf = max(len(f.filename) for f in report.files)
        out.append(f"  {'OUTCOME':8}  {'TABLE':{wt}}  {'FILE':{wf}}  {'ORIGINAL MD5':32}  REPLAY MD5")
        for f in report.files:
            out.append(
                f"  {f.outcome:8}  {f.table:{wt}}  {f.filename:{wf}}  {f.original_md5 or '-':32}  {f.replay_md5 or '-'}"
            )
    for w in report.warnings:
        out.append(f"  warning: {w}")
    if report.reproduced:
        out.append(f"reproduced: all {len(report.files)} outputs have the same MD5")
    else:
        n = len(report.differing)
        out.append(
            f"NOT reproduced: {n} of {len(report.files)} outputs differ"
            if report.files
            else "NOT reproduced: no outputs to compare"
        )
    return out
