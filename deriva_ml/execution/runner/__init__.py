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

The package has three parts: :mod:`._run` (records, model introspection, :func:`run_model`), :mod:`._task`
(the Hydra task, one call per job) and :mod:`._cli` (argparse, logging levels, ``--info``, :func:`main`).
Every public name (and the private ones the notebook runner and the sweep use) is importable from here.

See ``docs/runner.md``.
"""

# ruff: noqa: I001  (one import block per part; `as` marks each name re-exported)
from __future__ import annotations

from typing import Any

from deriva_ml.execution._hydra_configs import (
    DEFAULT_CONFIG_NAME as DEFAULT_CONFIG_NAME,
    MULTIRUN_GROUP as MULTIRUN_GROUP,
    DatasetSpecConfig as DatasetSpecConfig,
    DerivaMLConfig as DerivaMLConfig,
    DerivaMLConnection as DerivaMLConnection,
    DerivaRunConfig as DerivaRunConfig,
    MultirunSpec as MultirunSpec,
    UploadConfig as UploadConfig,
    UploadSettings as UploadSettings,
    make_run_config as make_run_config,
    multirun_config as multirun_config,
)
from deriva_ml.execution.runner._cli import (
    _CALLBACK as _CALLBACK,
    _REQUIRED_GROUPS as _REQUIRED_GROUPS,
    LOG_LEVEL_ENV as LOG_LEVEL_ENV,
    USAGE_ERROR as USAGE_ERROR,
    _configure_console_logging as _configure_console_logging,
    _finalize_command as _finalize_command,
    _import_config_modules as _import_config_modules,
    _lookup_preset as _lookup_preset,
    _parser as _parser,
    _source_warnings_once as _source_warnings_once,
    console_log_level as console_log_level,
    discover_config_modules as discover_config_modules,
    expand_multirun as expand_multirun,
    logging_overrides as logging_overrides,
    main as main,
    missing_defaults as missing_defaults,
    render_info as render_info,
)
from deriva_ml.execution.runner._run import (
    PROG as PROG,
    RunResult as RunResult,
    SweepJob as SweepJob,
    _as_workflow as _as_workflow,
    _call_model as _call_model,
    _connection_of as _connection_of,
    _create_parent as _create_parent,
    model_function as model_function,
    model_source_file as model_source_file,
    render_result as render_result,
    run_model as run_model,
)
from deriva_ml.execution.runner._task import (
    _as_list as _as_list,
    _connection as _connection,
    _default_parent_description as _default_parent_description,
    _hydra_metadata_files as _hydra_metadata_files,
    _instantiate as _instantiate,
    _instantiate_model as _instantiate_model,
    _missing as _missing,
    config_choices_of as config_choices_of,
)
from deriva_ml.execution._sweep import derive_parent_status as derive_parent_status


def _hydra_task(cfg: Any) -> Any:
    """The task function Hydra calls once per job. It lives here, not in ``._task``, because Hydra names the
    job after the task function's module (``runner``: the job's ``runner.log``) and launchers pickle it by
    reference as ``deriva_ml.execution.runner._hydra_task``."""
    from deriva_ml.execution.runner._task import hydra_task

    return hydra_task(cfg)


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
