"""The runner's Hydra task: turn one composed job config into a :func:`run_model` call."""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deriva_ml._log import get_logger
from deriva_ml.core.redact import redact_argv, redact_text
from deriva_ml.core.status import Status
from deriva_ml.execution._hydra_configs import (
    MULTIRUN_GROUP,
    DerivaMLConnection,
    multirun_spec_from_node,
)
from deriva_ml.execution._sweep import JobOutcome, SweepDir
from deriva_ml.execution.runner._run import PROG, SweepJob, render_result, run_model

if TYPE_CHECKING:
    from deriva_ml._ml import DerivaML


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


def hydra_task(cfg: Any) -> Any:
    """One Hydra job (in the launching process or a launcher's worker): called through
    ``deriva_ml.execution.runner._hydra_task``."""
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
        # before anything can fail: Hydra wrote multirun.yaml and this job's .hydra/*.yaml with the raw
        # overrides, and a job that fails early (or is killed) must not leave them for finalization to redact
        sweep_dir.redact_hydra_files(Path(str(hc.runtime.output_dir)))
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
