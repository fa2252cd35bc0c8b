"""Pure decisions of ``deriva-ml replay``: where the code is, how it ran, what to run now, what came out.

Facts in, records out; no I/O, no clock, no environment reads. The shell (:mod:`deriva_ml.replay.run`)
gathers the facts (catalog rows, the recorded ``configuration.json``, the git objects at the recorded
commit), calls these functions and carries out the plan.

* :func:`parse_workflow_url` — the recorded Workflow URL as a code location (commit + path, or a file).
* :func:`plan_replay` — a :class:`ReplayPlan`: the checkout, the command, its environment, the inputs to
  pin; or :class:`ReplayRefused` with the reason (dirty run, unknown commit, nothing recorded to re-run).
* :func:`apply_overrides` — ``--override key=value`` applied to a recorded command line.
* :func:`compare_outputs` / :func:`render_report` — the reproducibility report, per file by MD5.
"""

from __future__ import annotations

import fnmatch
import json
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import attrs

from deriva_ml.core.errors import DerivaMLException, ValidationError
from deriva_ml.core.redact import REDACTED
from deriva_ml.replay.link import ENV_REPLAY_DATASETS, ENV_REPLAY_OF, ENV_REPLAY_RECORD, LINK_PATTERN

#: The workflow overrides of ``deriva_ml.source`` (the replayed run gets the original workflow row).
ENV_WORKFLOW_URL = "DERIVA_ML_WORKFLOW_URL"
ENV_WORKFLOW_CHECKSUM = "DERIVA_ML_WORKFLOW_CHECKSUM"

HYDRA_PROG = "deriva-ml-run"
NOTEBOOK_PROG = "deriva-ml-run-notebook"

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

RunKind = Literal["script", "module", "hydra", "notebook"]


def _tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(value)


class ReplayRefused(DerivaMLException):
    """The execution cannot be replayed faithfully; the message says why and what was looked at."""


# ------------------------------------------------------------------------------------------- records


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


@attrs.frozen
class ReplayPlan:
    """What a replay will do. ``command[0]`` is the interpreter; paths in ``command`` relative to the
    checkout are prefixed with ``{checkout}`` (the shell substitutes the temporary directory)."""

    execution_rid: str
    kind: RunKind
    repo_root: str
    commit: str
    path: str
    checksum: str
    command: tuple[str, ...] = attrs.field(converter=_tuple)
    env: Mapping[str, str] = attrs.field(factory=dict)
    pythonpath: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    datasets: tuple[InputDataset, ...] = attrs.field(default=(), converter=_tuple)
    inputs: tuple[AssetFact, ...] = attrs.field(default=(), converter=_tuple)
    expected_outputs: tuple[AssetFact, ...] = attrs.field(default=(), converter=_tuple)
    overrides: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    warnings: tuple[str, ...] = attrs.field(default=(), converter=_tuple)

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(
            self, recurse=True, value_serializer=lambda _i, _a, v: dict(v) if isinstance(v, Mapping) else v
        )


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


# -------------------------------------------------------------------------------------- code location

_SHA = r"(?P<sha>[0-9a-fA-F]{40}|[0-9a-fA-F]{64})"
_BROWSE = (
    re.compile(r"^(?P<repo>.+?)/-/blob/" + _SHA + r"/(?P<path>.+)$"),  # GitLab
    re.compile(r"^(?P<repo>.+?)/src/commit/" + _SHA + r"/(?P<path>.+)$"),  # Gitea / Forgejo
    re.compile(r"^(?P<repo>.+?)/blob/" + _SHA + r"/(?P<path>.+)$"),  # GitHub and the default form
    re.compile(r"^(?P<repo>.+?)/src/" + _SHA + r"/(?P<path>.+)$"),  # Bitbucket
)


def parse_workflow_url(url: str | None) -> CodeLocation:
    """The code location a recorded Workflow URL names (the forms ``deriva_ml.source.detect`` writes).

    Raises :class:`ReplayRefused` for URLs that name no file (a Docker image, an empty URL...)."""
    if not url:
        raise ReplayRefused("the workflow has no URL: nothing records which code ran")
    parts = urlsplit(url)
    if parts.scheme == "file":
        path = unquote(parts.path)
        return CodeLocation(url=url, path=posixpath.basename(path), file_path=path)
    if parts.scheme in ("http", "https"):
        whole = f"{parts.netloc}{parts.path}"
        for rx in _BROWSE:
            m = rx.match(whole)
            if m:
                return CodeLocation(
                    url=url, path=unquote(m.group("path")), commit=m.group("sha").lower(), repo_hint=m.group("repo")
                )
    raise ReplayRefused(
        f"workflow URL {url!r} names no commit and file (expected a forge URL such as "
        f"https://HOST/ORG/REPO/blob/SHA/PATH or a file:// URL); replay needs the source at a commit"
    )


# ---------------------------------------------------------------------------------------- run kind


def run_kind(facts: ExecutionFacts, source: SourceFacts) -> RunKind:
    """How the execution was run: by ``deriva-ml-run`` (Hydra), by ``deriva-ml-run-notebook``, as a module
    (the file is inside a Python package) or as a plain script."""
    prog = posixpath.basename(facts.argv[0].replace("\\", "/")) if facts.argv else ""
    if prog == HYDRA_PROG or prog.startswith(HYDRA_PROG + "."):
        return "hydra"
    if prog == NOTEBOOK_PROG or facts.is_notebook or source.path.endswith(".ipynb"):
        return "notebook"
    return "module" if source.module else "script"


# ----------------------------------------------------------------------------------------- overrides


def parse_override(text: str) -> tuple[str, str]:
    """``key=value`` -> ``(key, value)``; anything else is a usage error naming the expected form."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValidationError(f"override {text!r} is not KEY=VALUE (e.g. seed=3, model.lr=0.1)")
    return key, value


def apply_overrides(kind: RunKind, args: Sequence[str], overrides: Sequence[str]) -> tuple[str, ...]:
    """The recorded arguments (without the program) with ``key=value`` overrides applied.

    * script / module: ``--key value`` and ``--key=value`` are replaced (``_`` and ``-`` in the key are
      equivalent); an argument ``key=value`` is replaced; otherwise ``--key value`` is appended.
    * hydra: an override ``key=...``, ``+key=...`` or ``++key=...`` is replaced; otherwise ``key=value``
      is appended (Hydra's override grammar).
    * notebook: ``-p key value`` (or ``--parameter``) is replaced, otherwise ``-p key value`` is appended;
      a ``key`` containing ``.`` or ``/`` is a Hydra override and is handled like ``hydra``.
    """
    out = list(args)
    for text in overrides:
        key, value = parse_override(text)
        if kind == "hydra" or (kind == "notebook" and ("." in key or "/" in key)):
            out = _override_hydra(out, key, value)
        elif kind == "notebook":
            out = _override_notebook(out, key, value)
        else:
            out = _override_script(out, key, value)
    return tuple(out)


def _override_hydra(args: list[str], key: str, value: str) -> list[str]:
    bare = key.lstrip("+")
    for i, a in enumerate(args):
        k, sep, _ = a.partition("=")
        if sep and k.lstrip("+~") == bare:
            return [*args[:i], f"{k}={value}", *args[i + 1 :]]
    return [*args, f"{key}={value}"]


def _override_notebook(args: list[str], key: str, value: str) -> list[str]:
    for i, a in enumerate(args):
        if a in ("-p", "--parameter") and i + 2 < len(args) + 1 and i + 1 < len(args) and args[i + 1] == key:
            return [*args[: i + 2], value, *args[i + 3 :]]
    return [*args, "-p", key, value]


def _norm(flag: str) -> str:
    return flag.lstrip("-").replace("_", "-")


def _override_script(args: list[str], key: str, value: str) -> list[str]:
    want = _norm(key)
    for i, a in enumerate(args):
        if a.startswith("--"):
            name, sep, _ = a.partition("=")
            if _norm(name) == want:
                if sep:
                    return [*args[:i], f"{name}={value}", *args[i + 1 :]]
                if i + 1 < len(args):
                    return [*args[: i + 1], value, *args[i + 2 :]]
                return [*args, value]
        else:
            name, sep, _ = a.partition("=")
            if sep and _norm(name) == want:
                return [*args[:i], f"{name}={value}", *args[i + 1 :]]
    return [*args, f"--{key}", value]


# ------------------------------------------------------------------------------------------- the plan


def check_source(loc: CodeLocation, checksum: str | None, source: SourceFacts) -> None:
    """Refuse unless the commit was found offline and the file at that commit is the recorded one."""
    if source.commit is None or source.repo_root is None:
        where = "; ".join(source.searched) or "no local repository"
        what = f"commit {loc.commit}" if loc.commit else f"a commit holding {loc.path} with blob {checksum}"
        raise ReplayRefused(f"cannot find {what} offline (looked in: {where}); pass --repo PATH of a clone that has it")
    if not checksum:
        raise ReplayRefused(
            f"the workflow of this execution has no checksum: the file that ran cannot be checked against "
            f"{source.path} at commit {source.commit}"
        )
    if source.blob_id is None:
        raise ReplayRefused(f"{source.path} does not exist at commit {source.commit} in {source.repo_root}")
    if source.blob_id != checksum:
        raise ReplayRefused(
            f"the recorded checksum {checksum} of {source.path} does not match the file at commit "
            f"{source.commit} (blob {source.blob_id}): the run used uncommitted changes (a dirty run), so "
            f"its code cannot be restored"
        )


def plan_replay(
    facts: ExecutionFacts,
    source: SourceFacts,
    *,
    overrides: Sequence[str] = (),
    python: str = "python",
    scripts_dir: str | None = None,
) -> ReplayPlan:
    """The replay of ``facts`` with the code found in ``source``; raises :class:`ReplayRefused` with the
    reason when the run cannot be replayed faithfully.

    ``python``: the interpreter of the replay; ``scripts_dir``: where ``deriva-ml-run`` and
    ``deriva-ml-run-notebook`` live (None: they are run through ``python -c``)."""
    loc = parse_workflow_url(facts.workflow_url)
    check_source(loc, facts.workflow_checksum, source)
    assert source.commit is not None and source.repo_root is not None  # check_source refused otherwise
    if facts.has_children:
        raise ReplayRefused(
            f"execution {facts.rid} is the parent of nested executions (a sweep): replay one of its children"
        )
    kind = run_kind(facts, source)
    if not facts.argv:
        raise ReplayRefused(f"execution {facts.rid} recorded no command line (argv): how it ran is unknown")
    args = apply_overrides(kind, facts.argv[1:], overrides)
    hidden = [a for a in args if REDACTED in a]
    if hidden:
        raise ReplayRefused(
            f"the recorded command line of {facts.rid} had secrets removed ({', '.join(hidden)}): they are never "
            f"recorded, so give them with --override KEY=VALUE (e.g. for --token <redacted>: --override token=...)"
        )
    warnings: list[str] = []
    pythonpath: tuple[str, ...] = ()
    if kind == "hydra":
        command = _tool(python, scripts_dir, HYDRA_PROG, "deriva_ml.execution.runner", args)
    elif kind == "notebook":
        nb_args = list(args)
        # the notebook argument is the first that names a .ipynb file: the checked-out copy runs
        for i, a in enumerate(nb_args):
            if a.endswith(".ipynb"):
                nb_args[i] = "{checkout}/" + source.path
                break
        else:
            nb_args.insert(0, "{checkout}/" + source.path)
        command = _tool(python, scripts_dir, NOTEBOOK_PROG, "deriva_ml.execution.notebook_runner", nb_args)
    elif kind == "module":
        assert source.module is not None
        command = (python, "-m", source.module, *args)
        pythonpath = ("{checkout}/" + source.module_root if source.module_root else "{checkout}",)
    else:
        command = (python, "{checkout}/" + source.path, *args)
    if not facts.outputs:
        warnings.append(f"execution {facts.rid} recorded no outputs: there is nothing to compare")
    if facts.status != "Completed":
        warnings.append(f"execution {facts.rid} ended {facts.status}, not Completed")
    env = {
        ENV_REPLAY_OF: facts.rid,
        ENV_WORKFLOW_URL: facts.workflow_url or "",
        ENV_WORKFLOW_CHECKSUM: facts.workflow_checksum or "",
        ENV_REPLAY_DATASETS: json.dumps({d.rid: d.version for d in facts.datasets if d.version}, sort_keys=True),
    }
    return ReplayPlan(
        execution_rid=facts.rid,
        kind=kind,
        repo_root=source.repo_root,
        commit=source.commit,
        path=source.path,
        checksum=facts.workflow_checksum or "",
        command=command,
        env=env,
        pythonpath=pythonpath,
        datasets=facts.datasets,
        inputs=facts.inputs,
        expected_outputs=comparable_outputs(facts.outputs),
        overrides=tuple(overrides),
        warnings=tuple(warnings),
    )


def _tool(python: str, scripts_dir: str | None, prog: str, module: str, args: Sequence[str]) -> tuple[str, ...]:
    if scripts_dir:
        return (posixpath.join(scripts_dir.replace("\\", "/"), prog), *args)
    return (python, "-c", f"import sys; from {module} import main; sys.exit(main())", *args)


# ------------------------------------------------------------------------------------------- report


#: The executed notebook ``deriva-ml-run-notebook`` uploads (``Notebook_Output``): a record of the run whose
#: cell timings and kernel metadata differ on every run; its results are the notebook's other outputs.
EXECUTED_NOTEBOOK = "*.ipynb"


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


def render_plan(plan: ReplayPlan) -> list[str]:
    """``--dry-run``: what would be checked out, restored and run (nothing is written)."""
    out = [
        f"replay plan for execution {plan.execution_rid} ({plan.kind})",
        f"  checkout:  {plan.repo_root} @ {plan.commit}",
        f"  file:      {plan.path}  (blob {plan.checksum}, verified)",
        f"  command:   {' '.join(plan.command)}",
    ]
    if plan.pythonpath:
        out.append(f"  PYTHONPATH: {':'.join(plan.pythonpath)}")
    if plan.overrides:
        out.append(f"  overrides: {' '.join(plan.overrides)}")
    out.append("  inputs:")
    if not plan.datasets and not plan.inputs:
        out.append("    (none)")
    for d in plan.datasets:
        out.append(f"    dataset {d.rid} @ {d.version or '(current)'}")
    for a in plan.inputs:
        out.append(f"    {a.table} {a.rid} {a.filename} md5 {a.md5}")
    out.append("  outputs to compare:")
    if not plan.expected_outputs:
        out.append("    (none)")
    for a in plan.expected_outputs:
        out.append(f"    {a.table} {a.filename} md5 {a.md5}")
    for w in plan.warnings:
        out.append(f"  warning: {w}")
    return out


__all__ = [
    "ENV_REPLAY_DATASETS",
    "ENV_REPLAY_OF",
    "ENV_REPLAY_RECORD",
    "LIBRARY_METADATA",
    "AssetFact",
    "CodeLocation",
    "ExecutionFacts",
    "FileComparison",
    "InputDataset",
    "ReplayPlan",
    "ReplayRefused",
    "ReplayReport",
    "SourceFacts",
    "apply_overrides",
    "check_source",
    "comparable_outputs",
    "compare_outputs",
    "is_library_metadata",
    "parse_override",
    "parse_workflow_url",
    "plan_replay",
    "render_plan",
    "render_report",
    "run_kind",
]
