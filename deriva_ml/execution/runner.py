"""``deriva-ml-run``: run a model under Hydra (hydra-zen configs) with full DerivaML provenance.

A *model* is any callable that takes the :class:`~deriva_ml.DerivaML` instance and the running
:class:`~deriva_ml.execution.Execution` as keyword arguments ``ml_instance`` and ``execution`` (``ml`` and
``exe`` are accepted too), plus its own parameters, which come from the ``model_config`` group::

    def train(learning_rate: float = 0.01, epochs: int = 3, *, ml_instance, execution): ...

    store(builds(train, learning_rate=0.01, zen_partial=True), group="model_config", name="default_model")

For each run the runner: connects (``deriva_ml`` group), builds the workflow (``workflow`` group) with its
source detected from the *model's* file, creates the execution with the ``datasets`` and ``assets`` of the
config, the selected config names (``config_choices``) and the job's resolved overrides (``argv``) in
``configuration.json`` and Hydra's ``config.yaml``/``overrides.yaml``/``hydra.yaml`` uploaded as
``Hydra_Config`` metadata; runs the model inside ``with execution:``; and uploads its outputs (also after
a failure). In a multirun every job is a child of one parent execution (see ``_sweep.py``).

See ``docs/runner.md``.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import json
import logging
import os
import pkgutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from deriva_ml._log import get_logger
from deriva_ml.core.records import AssetSpec, DatasetSpec, ExecutionConfiguration, Workflow
from deriva_ml.core.redact import redact_argv, redact_text
from deriva_ml.core.status import Status
from deriva_ml.execution._hydra_configs import (
    DEFAULT_CONFIG_NAME,
    MULTIRUN_GROUP,
    DatasetSpecConfig,
    DerivaMLConfig,
    DerivaMLConnection,
    DerivaRunConfig,
    MultirunSpec,
    UploadConfig,
    UploadSettings,
    make_run_config,
    multirun_config,
    multirun_spec_from_node,
    register_fallbacks,
)
from deriva_ml.execution._sweep import JobOutcome, SweepDir, derive_parent_status

if TYPE_CHECKING:
    from deriva_ml._ml import DerivaML
    from deriva_ml.execution._execution import Execution

PROG = "deriva-ml-run"
_CALLBACK = "deriva_ml.execution._sweep.SweepFinalizer"
#: Console log level of ``deriva-ml-run`` (``WARNING`` unless ``-v``/``-vv``): DEBUG, INFO, WARNING, ERROR.
LOG_LEVEL_ENV = "DERIVA_ML_LOG_LEVEL"


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
    return ml.create_workflow(
        workflow.name,
        list(workflow.workflow_type),
        workflow.description or "",
        url=workflow.url,
        checksum=workflow.checksum,
        version=workflow.version,
        caller_file=model_source_file(model),
    )


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


# ------------------------------------------------------------------------------------- hydra task


def _instantiate(node: Any, **kwargs: Any) -> Any:
    from hydra_zen import instantiate

    return instantiate(node, _convert_="all", **kwargs)


def _instantiate_model(node: Any) -> Any:
    """The model callable: a config without ``_partial_`` whose target is a function is made partial."""
    from omegaconf import DictConfig, OmegaConf

    if node is None:
        raise ValueError("no model: select one with model_config=NAME (group 'model_config')")
    if isinstance(node, DictConfig) and "_target_" in node and not OmegaConf.select(node, "_partial_", default=False):
        from hydra.utils import get_object

        if inspect.isfunction(get_object(node._target_)):
            return _instantiate(node, _partial_=True)
    obj = _instantiate(node)
    if not callable(obj):
        raise TypeError(f"model_config instantiated to {obj!r}, which is not callable")
    return obj


def _as_list(value: Any) -> list[Any]:
    """A ``datasets``/``assets`` group value as a list: one spec (``datasets=points datasets.rid=...``), a
    list of specs, a bare RID, or nothing."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _connection(node: Any) -> DerivaML | DerivaMLConnection:
    obj = _instantiate(node) if node is not None else DerivaMLConnection()
    from deriva_ml._ml import DerivaML

    if isinstance(obj, DerivaMLConnection | DerivaML):
        return obj
    if isinstance(obj, Mapping):
        return DerivaMLConnection(**obj)
    raise TypeError(f"deriva_ml config instantiated to {obj!r}; use DerivaMLConfig(...) or builds(DerivaML, ...)")


def _hydra_metadata_files(hc: Any, dest: Path, stamp: str) -> list[tuple[Path, str]]:
    """Hydra's ``config.yaml``, ``overrides.yaml``, ``hydra.yaml`` of this job, renamed ``hydra-<stamp>-*``."""
    from deriva_ml.core.definitions import ExecMetadataType

    if not hc.output_subdir:
        return []
    src = Path(str(hc.runtime.output_dir)) / str(hc.output_subdir)
    out = []
    for name in ("config.yaml", "overrides.yaml", "hydra.yaml"):
        f = src / name
        if f.is_file() and not f.is_symlink():
            text = redact_text(f.read_text(encoding="utf-8", errors="replace"))
            # Hydra's own copy in the job's output directory is redacted too (it wrote the secrets verbatim)
            f.write_text(text, encoding="utf-8")
            target = dest / f"hydra-{stamp}-{name}"
            target.write_text(text, encoding="utf-8")
            out.append((target, ExecMetadataType.hydra_config.value))
    return out


def config_choices_of(choices: Mapping[str, Any]) -> dict[str, str]:
    """The selected config of each of the project's groups (Hydra's own ``hydra/*`` groups left out)."""
    return {str(k): str(v) for k, v in choices.items() if v is not None and not str(k).startswith("hydra/")}


def _hydra_task(cfg: Any) -> Any:
    """The task function Hydra calls once per job (in the launching process or a launcher's worker)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    overrides = redact_argv([str(o) for o in hc.overrides.task])  # provenance, descriptions, console: no secrets
    choices = config_choices_of(hc.runtime.choices)
    dry_run = bool(cfg.get("dry_run", False))
    num = int(hc.job.num) if multirun else 0
    description = str(cfg.get("description") or "")
    sweep: SweepJob | None = None
    sweep_dir: SweepDir | None = None
    if multirun:
        root = Path(str(hc.sweep.dir))
        if not root.is_absolute():
            root = Path(str(hc.runtime.cwd)) / root
        preset = cfg.get(MULTIRUN_GROUP)
        parent_description = (
            multirun_spec_from_node(preset).description if preset is not None else ""
        ) or _default_parent_description(description, root)
        sweep_dir = SweepDir(root)
        info = sweep_dir.read_sweep()  # written by SweepFinalizer.on_multirun_start in the launching process
        from omegaconf import OmegaConf

        node = cfg.get("deriva_ml")
        container = OmegaConf.to_container(node, resolve=True) if node is not None else None
        connection_config = {str(k): v for k, v in container.items()} if isinstance(container, dict) else None
        # what the whole sweep was asked for; without it (no callback ran), this job's own choices
        sweep = (
            SweepJob(
                root,
                num,
                parent_description,
                info.choices,
                redact_argv(info.overrides),
                info.launcher,
                connection_config,
            )
            if info is not None
            else SweepJob(root, num, parent_description, choices, overrides, None, connection_config)
        )
        job_text = f"Sweep job {num}: `{' '.join(overrides)}`" if overrides else f"Sweep job {num}"
        description = f"{description}\n\n{job_text}" if description else job_text
    report: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="deriva-ml-hydra-") as tmp:
            stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
            result = run_model(
                _connection(cfg.get("deriva_ml")),
                _instantiate(cfg.workflow) if cfg.get("workflow") is not None else _missing("workflow"),
                _instantiate_model(cfg.get("model_config")),
                datasets=_as_list(_instantiate(cfg.get("datasets"))),
                assets=_as_list(_instantiate(cfg.get("assets"))),
                description=description,
                dry_run=dry_run,
                upload=_instantiate(cfg.get("upload")) if cfg.get("upload") is not None else None,
                config_choices=choices,
                argv=(PROG, *overrides),
                metadata_files=_hydra_metadata_files(hc, Path(tmp), stamp),
                sweep=sweep,
                _report=report,
            )
    except Exception as exc:
        rid = report.get("execution_rid")
        print(
            f"{PROG}: job {num} FAILED" + (f" (execution {rid})" if rid else "") + f": {redact_text(repr(exc))}",
            flush=True,
        )
        if sweep_dir is None or dry_run:
            raise
        # In a sweep the failure is recorded (the child is Failed in the catalog) and the sweep goes on;
        # SweepFinalizer derives the parent's status and makes the command exit non-zero. The traceback
        # goes to the job's log file (and the console with -v).
        get_logger("deriva_ml.runner").info("sweep job failed", job=num, exc_info=True)
        why = redact_text(f"{type(exc).__name__}: {exc}")
        sweep_dir.record_job(JobOutcome(num, Status.failed, rid if not dry_run else None, why))
        return JobOutcome(num, Status.failed, rid, why)
    if sweep_dir is not None and not dry_run:
        sweep_dir.record_job(JobOutcome(num, result.status, result.execution_rid))
    print(render_result(result, job=num if multirun else None, overrides=overrides), flush=True)
    return result


def _missing(group: str) -> Any:
    raise ValueError(f"no {group}: select one with {group}=NAME (see `{PROG} --info`)")


def _default_parent_description(description: str, sweep_dir: Path) -> str:
    head = f"{description}\n\n" if description else ""
    return (
        f"## Multirun sweep\n\n{head}Each job of the sweep is a nested execution "
        f"(Sequence = Hydra job number). Sweep directory: `{sweep_dir}`."
    )


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


# ---------------------------------------------------------------------------------------------- CLI


def _import_config_modules(names: Sequence[str], search: Sequence[Path]) -> list[str]:
    """Import each config module (and every submodule of a package) so its ``store(...)`` calls register."""
    for d in reversed([str(p) for p in search]):
        if d not in sys.path:
            sys.path.insert(0, d)
    loaded: list[str] = []
    for name in names:
        module = importlib.import_module(name)
        loaded.append(name)
        if hasattr(module, "__path__"):
            for info in sorted(pkgutil.walk_packages(module.__path__, prefix=f"{name}."), key=lambda m: m.name):
                importlib.import_module(info.name)
                loaded.append(info.name)
    return loaded


def discover_config_modules(cwd: Path, explicit: Sequence[str]) -> tuple[list[str], list[Path]]:
    """Which config modules to import: ``--config-module``, else ``$DERIVA_ML_CONFIG_MODULE``, else a
    ``configs`` package in the current directory or in ``src/``. Returns the names and sys.path entries."""
    search = [cwd]
    if (cwd / "src").is_dir():
        search.append(cwd / "src")
    if explicit:
        return list(explicit), search
    env = os.environ.get("DERIVA_ML_CONFIG_MODULE", "")
    if env.strip():
        return [m.strip() for m in env.split(",") if m.strip()], search
    for d in search:
        if (d / "configs" / "__init__.py").is_file():
            return ["configs"], [d]
    return [], search


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        add_help=False,
        description="Run a model with DerivaML provenance. Anything not listed here is passed to Hydra "
        "(overrides such as workflow=NAME, +experiment=NAME, +multirun=NAME, -m, --config-dir, hydra/launcher=joblib).",
    )
    p.add_argument(
        "--config-module",
        action="append",
        default=[],
        metavar="MODULE",
        help="module/package whose store(...) calls define the configs "
        "(repeatable; default: ./configs or ./src/configs)",
    )
    p.add_argument("--config-name", "-cn", default=None, help=f"top-level config (default {DEFAULT_CONFIG_NAME})")
    p.add_argument("--info", action="store_true", help="list config groups, their options and the multirun presets")
    p.add_argument("--host", default=None, help="shortcut for deriva_ml.hostname=HOST ('local' = embedded catalog)")
    p.add_argument("--catalog", default=None, help="shortcut for deriva_ml.catalog_id=ID")
    p.add_argument(
        "--finalize-sweep",
        default=None,
        metavar="SWEEP_DIR",
        help="(re)derive the parent status of a sweep whose launching process died, then exit",
    )
    p.add_argument(
        "--verbose",
        "-v",
        action="count",
        default=0,
        help=f"log INFO (-v) or DEBUG (-vv) to the console; default WARNING (also ${LOG_LEVEL_ENV}=INFO...). "
        "The job's log file always has INFO.",
    )
    p.add_argument("--help", "-h", action="store_true", help="this help (Hydra's own: --hydra-help)")
    return p


def console_log_level(verbose: int, env: Mapping[str, str], hydra_args: Sequence[str] = ()) -> int:
    """The console's log level: ``-vv`` DEBUG, ``-v`` INFO, else ``$DERIVA_ML_LOG_LEVEL``, else WARNING
    (``hydra.verbose=...`` on the command line means DEBUG, so that what it enables is shown)."""
    if verbose >= 2 or any(a.startswith("hydra.verbose=") for a in hydra_args):
        return logging.DEBUG
    if verbose == 1:
        return logging.INFO
    name = env.get(LOG_LEVEL_ENV, "").strip().upper()
    if name:
        level = logging.getLevelName(name)
        if not isinstance(level, int):
            raise SystemExit(f"{PROG}: ${LOG_LEVEL_ENV}={name!r} is not a log level (DEBUG, INFO, WARNING, ERROR)")
        return level
    return logging.WARNING


def logging_overrides(level: int, hydra_args: Sequence[str]) -> list[str]:
    """Hydra overrides that set the console handlers of Hydra's job and launcher logging to ``level``.

    Hydra configures logging for the app (the console and ``<job>/<task>.log`` at INFO); the runner only
    raises the console's threshold, so the log file keeps every INFO event. A ``hydra/job_logging=...``
    or ``hydra/hydra_logging=...`` of the user's is left alone.
    """
    name = logging.getLevelName(level)
    out = []
    if not any(a.startswith(("hydra/job_logging=", "hydra.job_logging")) for a in hydra_args):
        out.append(f"hydra.job_logging.handlers.console.level={name}")
        if level <= logging.DEBUG:
            out += ["hydra.job_logging.root.level=DEBUG", "hydra.job_logging.handlers.file.level=DEBUG"]
    if not any(a.startswith(("hydra/hydra_logging=", "hydra.hydra_logging")) for a in hydra_args):
        out.append(f"hydra.hydra_logging.handlers.console.level={name}")
    return [f"++{o}" for o in out]


def _configure_console_logging(level: int) -> None:
    """Logging of the runner's own commands that run outside Hydra (``--finalize-sweep``)."""
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def render_info(config_name: str = DEFAULT_CONFIG_NAME) -> str:
    """The store's groups, their options (default marked ``*``) and the multirun presets."""
    from hydra_zen import store

    groups: dict[str, list[str]] = {}
    presets: list[MultirunSpec] = []
    primaries: list[str] = []
    for entry in store:
        group, name = entry["group"], entry["name"]
        if group is None:
            primaries.append(name)
        elif group == MULTIRUN_GROUP:
            presets.append(multirun_spec_from_node(entry["node"]))
        else:
            groups.setdefault(group, []).append(name)
    defaults: dict[str, str] = {}
    try:
        from omegaconf import OmegaConf

        top = OmegaConf.create(store.get_entry(None, config_name)["node"])
        for d in OmegaConf.to_container(top).get("defaults") or []:  # type: ignore[union-attr]
            if isinstance(d, Mapping):
                for k, v in d.items():
                    defaults[str(k).replace("optional ", "").replace("override ", "").lstrip("/")] = str(v)
    except KeyError:
        pass
    lines = [f"Top-level configs: {', '.join(sorted(primaries)) or '(none)'} (running {config_name})", ""]
    lines.append("Config groups (* = default):")
    for group in sorted(groups):
        opts = [f"{n}*" if defaults.get(group) == n else n for n in sorted(groups[group])]
        lines.append(f"  {group}: {', '.join(opts)}")
    lines.append("")
    lines.append(f"Multirun presets ({PROG} +multirun=NAME):")
    if not presets:
        lines.append("  (none)")
    for spec in sorted(presets, key=lambda s: s.name):
        first = next((ln.strip("# ").strip() for ln in spec.description.splitlines() if ln.strip()), "")
        lines.append(f"  {spec.name}: {' '.join(spec.overrides)}" + (f"  -- {first}" if first else ""))
    return "\n".join(lines)


def expand_multirun(args: Sequence[str], lookup: Callable[[str], MultirunSpec | None]) -> list[str]:
    """``+multirun=NAME`` → ``--multirun`` + the preset's overrides + the rest (the user's come last, so they win).

    Pure apart from ``lookup``. ``+multirun=NAME`` itself is kept so that the preset's description reaches
    every job and ``config_choices`` records it.
    """
    names = [a.split("=", 1)[1] for a in args if a.startswith(f"+{MULTIRUN_GROUP}=")]
    if not names:
        return list(args)
    if len(names) > 1 or "," in names[0]:
        raise SystemExit(f"{PROG}: give one +{MULTIRUN_GROUP}=NAME (got {names})")
    spec = lookup(names[0])
    if spec is None:
        raise SystemExit(f"{PROG}: no multirun preset {names[0]!r}; see `{PROG} --info`")
    out = [] if ("-m" in args or "--multirun" in args) else ["--multirun"]
    return [*out, *spec.overrides, *args]


def _lookup_preset(name: str) -> MultirunSpec | None:
    from hydra_zen import store

    try:
        return multirun_spec_from_node(store.get_entry(MULTIRUN_GROUP, name)["node"])
    except KeyError:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``deriva-ml-run``."""
    args, rest = _parser().parse_known_args(list(sys.argv[1:] if argv is None else argv))
    if args.help:
        _parser().print_help()
        return 0
    level = console_log_level(args.verbose, os.environ, rest)
    if args.finalize_sweep:
        return _finalize_command(Path(args.finalize_sweep), level)
    rest = ["--help" if a == "--hydra-help" else a for a in rest]
    names, search = discover_config_modules(Path.cwd(), args.config_module)
    _import_config_modules(names, search)
    config_name = args.config_name or DEFAULT_CONFIG_NAME
    from hydra_zen import store

    builtin_top = (None, config_name) not in store and config_name == DEFAULT_CONFIG_NAME
    register_fallbacks()
    if args.info:
        print(render_info(config_name))
        return 0
    if builtin_top and "--help" not in rest:
        problem = missing_defaults(store, rest, names, search)
        if problem:
            print(problem, file=sys.stderr)
            return USAGE_ERROR
    store.add_to_hydra_store(overwrite_ok=True)
    if args.host:
        rest.append(f"deriva_ml.hostname={args.host}")
    if args.catalog:
        rest.append(f"deriva_ml.catalog_id={args.catalog}")
    hydra_args = expand_multirun(rest, _lookup_preset)
    hydra_args.append(f"++hydra.callbacks.deriva_ml_sweep._target_={_CALLBACK}")
    hydra_args += logging_overrides(level, hydra_args)
    import hydra

    saved = sys.argv, warnings.showwarning
    sys.argv = [PROG, *hydra_args]
    warnings.showwarning = _source_warnings_once(warnings.showwarning)
    try:
        hydra.main(config_path=None, config_name=config_name, version_base="1.3")(_hydra_task)()
    finally:
        sys.argv, warnings.showwarning = saved
    return 0


#: Exit status of ``deriva-ml-run`` for a command line or configuration it cannot run (argparse's too).
USAGE_ERROR = 2

#: The groups of the built-in top-level config that need an option of the project's, and how to give one.
_REQUIRED_GROUPS = (
    (
        "workflow",
        "default_workflow",
        'store(builds(Workflow, name="Training", workflow_type="Training", populate_full_signature=True), '
        'group="workflow", name="default_workflow")',
    ),
    (
        "model_config",
        "default_model",
        'store(builds(train, populate_full_signature=True, zen_partial=True), group="model_config", '
        'name="default_model")',
    ),
)


def missing_defaults(store: Any, args: Sequence[str], modules: Sequence[str], search: Sequence[Path]) -> str | None:
    """What to configure when the built-in top-level config cannot be composed because the project has no
    default ``workflow`` / ``model_config`` option (None when nothing is missing, or when the command line
    may provide it: a ``GROUP=...`` selection, a ``+preset=...`` that may set it, YAML config dirs)."""
    if any(a.startswith(("--config-dir", "-cd", "--config-path", "-cp", "hydra.searchpath")) for a in args):
        return None
    if any(a.startswith("+") and "=" in a and "." not in a.split("=", 1)[0] for a in args):
        return None  # +experiment=NAME / +multirun=NAME may select the groups
    lines: list[str] = []
    for group, default, example in _REQUIRED_GROUPS:
        if (group, default) in store:
            continue
        if any(a.split("=", 1)[0].lstrip("+~") == group for a in args if "=" in a):
            continue
        options = sorted(e["name"] for e in store if e["group"] == group)
        pick = f" or pick one with {group}=NAME ({', '.join(options)})" if options else ""
        lines.append(f"  - no '{group}' option named '{default}': define one{pick}, e.g.\n      {example}")
    if not lines:
        return None
    where = (
        f"config module(s) {', '.join(modules)}"
        if modules
        else "no config module was found (no ./configs or ./src/configs package, no --config-module, "
        "no $DERIVA_ML_CONFIG_MODULE; looked in " + ", ".join(str(p) for p in search) + ")"
    )
    return (
        f"{PROG}: nothing to run: the configuration has no default workflow or model.\n"
        + "\n".join(lines)
        + f"\n  ({where}; see `{PROG} --info` and docs/runner.md)"
    )


def _finalize_command(path: Path, level: int) -> int:
    """``--finalize-sweep DIR``: 0 when the parent ends Completed, 1 when it ends Failed/Aborted or the sweep
    has no parent, :data:`USAGE_ERROR` when DIR is not a sweep directory of this runner."""
    from deriva_ml.execution._sweep import finalize_sweep, render_sweep_result

    sweep = SweepDir(path)
    if not sweep.path.is_dir():
        print(f"{PROG}: --finalize-sweep {path}: no such directory (give a sweep's hydra.sweep.dir)", file=sys.stderr)
        return USAGE_ERROR
    if not sweep.state_dir.is_dir():
        print(
            f"{PROG}: --finalize-sweep {path}: not a sweep directory of {PROG} (it has no {sweep.state_dir.name}/; "
            f"give the hydra.sweep.dir of a multirun)",
            file=sys.stderr,
        )
        return USAGE_ERROR
    _configure_console_logging(level)
    result = finalize_sweep(sweep)
    print(render_sweep_result(result))
    if result.parent_rid is None:
        print(f"{PROG}: --finalize-sweep {path}: no job of this sweep created a parent execution", file=sys.stderr)
        return 1
    return 1 if result.parent_status in (Status.failed, Status.aborted) else 0


def _source_warnings_once(show: Callable[..., None]) -> Callable[..., None]:
    """``warnings.showwarning`` that shows each distinct SourceWarning once per command (every job of a
    sweep detects the same source; a ``"once"`` filter does not survive the library's
    ``catch_warnings``)."""
    from deriva_ml.source import SourceWarning

    seen: set[str] = set()

    def showwarning(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, SourceWarning):
            if str(message) in seen:
                return
            seen.add(str(message))
        show(message, category, *args, **kwargs)

    return showwarning


__all__ = [
    "DatasetSpecConfig",
    "DerivaMLConfig",
    "DerivaMLConnection",
    "DerivaRunConfig",
    "MultirunSpec",
    "RunResult",
    "SweepJob",
    "UploadConfig",
    "UploadSettings",
    "derive_parent_status",
    "main",
    "make_run_config",
    "model_source_file",
    "multirun_config",
    "run_model",
]

if __name__ == "__main__":
    # Re-enter through the package module so that launchers pickle ``deriva_ml.execution.runner._hydra_task``
    # by reference rather than a copy of ``__main__``.
    from deriva_ml.execution.runner import main as _main

    sys.exit(_main())
