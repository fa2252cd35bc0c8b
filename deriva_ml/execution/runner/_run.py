"""The runner's run part: its records, model introspection and :func:`run_model` (one execution per run)."""

from __future__ import annotations

import functools
import inspect
import json
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from deriva_ml._log import get_logger
from deriva_ml.core.records import AssetSpec, DatasetSpec, ExecutionConfiguration, Workflow
from deriva_ml.core.status import Status
from deriva_ml.execution._hydra_configs import (
    DerivaMLConnection,
    UploadSettings,
)
from deriva_ml.execution._sweep import SweepDir

if TYPE_CHECKING:
    from deriva_ml._ml import DerivaML
    from deriva_ml.execution._execution import Execution

PROG = "deriva-ml-run"


# ------------------------------------------------------------------------------------------ records


@attrs.frozen
class RunResult:
    """What one run did: its execution, final status, workflow, uploads and (in a sweep) its parent."""

    execution_rid: str
    status: Status
    workflow_rid: str | None
    dry_run: bool
    working_dir: str
    uploaded: int = 0
    parent_rid: str | None = None
    sequence: int | None = None


def _str_dict(value: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()}


def _str_tuple(value: Sequence[Any]) -> tuple[str, ...]:
    return tuple(str(v) for v in value)


@attrs.frozen
class SweepJob:
    """A job of a multirun: the shared sweep directory, the job number, and what the parent records
    (its markdown description, the sweep's config choices and its overrides as given)."""

    sweep_dir: Path
    num: int
    parent_description: str
    parent_choices: dict[str, str] = attrs.field(factory=dict, converter=_str_dict, hash=False)
    parent_overrides: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    #: the launching process (``sweep.json``): it owns the parent, whichever job's process creates it
    launcher: dict[str, Any] | None = attrs.field(default=None, hash=False)
    #: the job's resolved ``deriva_ml`` config: finalization reconnects the same way
    connection_config: dict[str, Any] | None = attrs.field(default=None, hash=False)


# -------------------------------------------------------------------------------------------- model


def model_function(model: Any) -> Any:
    """The user's function behind ``model`` (through ``functools.partial`` and ``functools.wraps``)."""
    f = model
    for _ in range(20):
        if isinstance(f, functools.partial):
            f = f.func
        elif hasattr(f, "__wrapped__"):
            f = f.__wrapped__
        else:
            break
    if not (inspect.isfunction(f) or inspect.ismethod(f) or inspect.isclass(f)) and callable(f):
        f = type(f)  # a callable object: its class defines the model
    return f


def model_source_file(model: Any) -> Path | None:
    """The source file that defines ``model`` (what the workflow's URL and checksum must point at)."""
    try:
        src = inspect.getsourcefile(model_function(model))
    except TypeError:
        return None
    return Path(src).resolve() if src and os.path.isfile(src) else None


_ML_NAMES = ("ml_instance", "ml", "deriva_ml")
_EXE_NAMES = ("execution", "exe")


def _call_model(model: Callable[..., Any], ml: DerivaML, exe: Execution) -> Any:
    try:
        params = inspect.signature(model).parameters
    except (TypeError, ValueError):
        return model(ml_instance=ml, execution=exe)
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs: dict[str, Any] = {}
    for names, value in ((_ML_NAMES, ml), (_EXE_NAMES, exe)):
        name = next((n for n in names if n in params), None)
        if name is None and var_kw:
            name = names[0]
        if name is None:
            raise TypeError(
                f"model {getattr(model_function(model), '__qualname__', model)!r} must accept keyword "
                f"{' or '.join(repr(n) for n in names)}; its parameters are {list(params)}"
            )
        kwargs[name] = value
    return model(**kwargs)


# ------------------------------------------------------------------------------------------ running


def _as_workflow(ml: DerivaML, workflow: Workflow | str, model: Any) -> Workflow:
    """The workflow with its source detected from the model's file (explicit url/checksum are kept)."""
    if isinstance(workflow, str):  # a workflow RID
        record: Workflow = ml.lookup_workflow(workflow).record
        return record
    if not isinstance(workflow, Workflow):
        raise TypeError(f"workflow={workflow!r} must be a Workflow (the 'workflow' config group) or a workflow RID")
    if workflow.url and workflow.checksum:
        return workflow
    return ml.create_workflow_from_record(workflow, caller_file=model_source_file(model))


def _connection_of(ml: DerivaML) -> DerivaMLConnection:
    return DerivaMLConnection(
        hostname=ml.host_name,
        catalog_id=ml.catalog_id,
        home=str(ml.home.absolute()),
        working_dir=str(ml.working_dir),
        cache_dir=str(ml.cache_dir),
        allow_dirty=ml.allow_dirty,
        domain_schema=ml.domain_schema,
    )


def _create_parent(ml: DerivaML, workflow: Workflow, sweep: SweepJob) -> dict[str, Any]:
    config = ExecutionConfiguration(
        workflow=workflow,
        description=sweep.parent_description,
        argv=(PROG, "--multirun", *sweep.parent_overrides),
        config_choices=sweep.parent_choices,
    )
    parent = ml.create_execution(config)
    parent.execution_start()
    if sweep.launcher:
        # The parent lives as long as the sweep: its lease is the launching process's, not this job's
        # (under submitit or joblib this process may end while other jobs still run, and
        # abort_stale_executions() would then abort a live sweep's parent).
        parent._manifest.set_state("owner", json.dumps(sweep.launcher))
    get_logger("deriva_ml.runner").info("sweep parent created", execution_rid=str(parent.execution_rid))
    from deriva_ml.execution._lease import owner_identity

    return {
        "rid": str(parent.execution_rid),
        "workflow_rid": str(parent.workflow.rid) if parent.workflow.rid else None,
        "connection": attrs.asdict(_connection_of(ml)),
        "deriva_ml_config": sweep.connection_config,
        "created": datetime.now(UTC).isoformat(),
        "created_by": {"job": sweep.num, **owner_identity()},
    }


def run_model(
    deriva_ml: DerivaML | DerivaMLConnection,
    workflow: Workflow | str,
    model_config: Callable[..., Any],
    datasets: Sequence[DatasetSpec | str | Mapping[str, Any]] = (),
    assets: Sequence[AssetSpec | str | Mapping[str, Any]] = (),
    description: str = "",
    dry_run: bool = False,
    upload: UploadSettings | Mapping[str, Any] | None = None,
    *,
    config_choices: Mapping[str, str] | None = None,
    argv: Sequence[str] = (),
    metadata_files: Sequence[tuple[str | os.PathLike[str], str]] = (),
    sweep: SweepJob | None = None,
    _report: dict[str, Any] | None = None,
) -> RunResult:
    """Run ``model_config(ml_instance=..., execution=...)`` in a new execution and upload its outputs.

    The programmatic twin of ``deriva-ml-run`` (which calls it once per Hydra job). ``deriva_ml`` is a
    connected :class:`DerivaML` or a :class:`DerivaMLConnection`; ``workflow`` a :class:`Workflow` (its
    source is detected from the model's file unless url and checksum are set) or a workflow RID.
    ``dry_run=True`` runs the model but writes nothing to the catalog or object store. The model's
    exception propagates after the execution was recorded Failed and partial outputs were uploaded.
    """
    report = _report if _report is not None else {}
    own = isinstance(deriva_ml, DerivaMLConnection)
    ml = deriva_ml.connect() if isinstance(deriva_ml, DerivaMLConnection) else deriva_ml
    settings = (
        upload if isinstance(upload, UploadSettings) else UploadSettings(**dict(upload)) if upload else UploadSettings()
    )
    try:
        wf = _as_workflow(ml, workflow, model_config)
        parent_rid: str | None = None
        if sweep is not None and not dry_run:
            parent_rid = SweepDir(sweep.sweep_dir).ensure_parent(lambda: _create_parent(ml, wf, sweep))["rid"]
        config = ExecutionConfiguration(
            workflow=wf,
            description=description or wf.description or wf.name,
            datasets=datasets,
            assets=assets,
            argv=tuple(argv),
            config_choices=dict(config_choices or {}),
        )
        exe = ml.create_execution(config, dry_run=dry_run, metadata_files=metadata_files)
        report["execution_rid"] = str(exe.execution_rid)
        if parent_rid is not None and sweep is not None:
            ml.restore_execution(parent_rid).add_nested_execution(exe, sequence=sweep.num)
        error: BaseException | None = None
        try:
            with exe:
                _call_model(model_config, ml, exe)
        except BaseException as exc:
            error = exc
        uploaded = 0
        try:
            done = exe.upload_execution_outputs(
                timeout=settings.timeout,
                chunk_size=settings.chunk_size,
                max_retries=settings.max_retries,
                retry_delay=settings.retry_delay,
            )
            uploaded = sum(len(v) for v in done.values())
        except Exception:
            if error is None:
                raise
            get_logger("deriva_ml.runner").exception(
                "uploading the partial outputs of the failed execution failed", execution_rid=str(exe.execution_rid)
            )
        if error is not None:
            raise error
        return RunResult(
            execution_rid=str(exe.execution_rid),
            status=exe.status,
            workflow_rid=str(wf.rid) if wf.rid else (str(exe.workflow.rid) if exe.workflow.rid else None),
            dry_run=dry_run,
            working_dir=str(exe.working_dir),
            uploaded=uploaded,
            parent_rid=parent_rid,
            sequence=sweep.num if sweep is not None else None,
        )
    finally:
        if own:
            ml.close()


def render_result(result: RunResult, job: int | None = None, overrides: Sequence[str] = ()) -> str:
    """The one progress line printed per run (per job of a sweep)."""
    head = (
        f"{PROG}: job {job}" + (f" ({' '.join(overrides)})" if overrides else "") + ": "
        if job is not None
        else f"{PROG}: "
    )
    if result.dry_run:
        return (
            f"{head}DRY RUN - nothing was written to the catalog or object store; "
            f"model ran in {result.working_dir} (status {result.status.value})"
        )
    where = f"; sweep parent {result.parent_rid}" if result.parent_rid else ""
    return (
        f"{head}execution {result.execution_rid} {result.status.value} (workflow {result.workflow_rid}); "
        f"{result.uploaded} file(s) uploaded{where}"
    )
