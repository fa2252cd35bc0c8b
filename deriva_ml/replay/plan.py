"""Pure decisions of ``deriva-ml replay``: where the code is, how it ran, what to run now, what came out.

Facts in, records out; no I/O, no clock, no environment reads. The shell (:mod:`deriva_ml.replay.run`)
gathers the facts (catalog rows, the recorded ``configuration.json``, the git objects at the recorded
commit), calls these functions and carries out the plan.

* :func:`parse_workflow_url` — the recorded Workflow URL as a code location (commit + path, or a file).
* :func:`plan_replay` — a :class:`ReplayPlan`: the checkout, the command, its environment, the inputs to
  pin; or :class:`ReplayRefused` with the reason (dirty run, unknown commit, nothing recorded to re-run).
* :func:`apply_overrides` — ``--override key=value`` applied to a recorded command line.
* :func:`render_plan` — what ``--dry-run`` prints.

The facts it reads are in :mod:`deriva_ml.replay.facts`, the reproducibility report (per file by MD5) in
:mod:`deriva_ml.replay.report`; their names are importable from here too.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import attrs

from deriva_ml.core.errors import DerivaMLException, ValidationError
from deriva_ml.core.fields import as_tuple as _tuple
from deriva_ml.core.redact import REDACTED
from deriva_ml.replay.facts import AssetFact, CodeLocation, ExecutionFacts, InputDataset, SourceFacts
from deriva_ml.replay.link import ENV_REPLAY_DATASETS, ENV_REPLAY_OF, ENV_REPLAY_RECORD
from deriva_ml.replay.report import (
    LIBRARY_METADATA,
    FileComparison,
    ReplayReport,
    comparable_outputs,
    compare_outputs,
    is_library_metadata,
    render_report,
)

#: The workflow overrides of ``deriva_ml.source`` (the replayed run gets the original workflow row).
ENV_WORKFLOW_URL = "DERIVA_ML_WORKFLOW_URL"
ENV_WORKFLOW_CHECKSUM = "DERIVA_ML_WORKFLOW_CHECKSUM"

HYDRA_PROG = "deriva-ml-run"
NOTEBOOK_PROG = "deriva-ml-run-notebook"

RunKind = Literal["script", "module", "hydra", "notebook"]


class ReplayRefused(DerivaMLException):
    """The execution cannot be replayed faithfully; the message says why and what was looked at."""


# ------------------------------------------------------------------------------------------- records


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
