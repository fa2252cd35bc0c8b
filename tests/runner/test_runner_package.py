"""``deriva_ml.execution.runner`` is a package of three parts (run, task, CLI) that keeps every name importable
where it was, the console entry point, ``python -m``, and the job name and pickling Hydra relies on."""

from __future__ import annotations

import importlib
import pickle
import tomllib
from pathlib import Path

import deriva_ml.execution.runner as runner
from deriva_ml.execution.runner import _cli, _run, _task

ROOT = Path(__file__).resolve().parents[2]

#: Names users, docs/runner.md, the notebook runner and the sweep import from deriva_ml.execution.runner.
IMPORTED = [
    *runner.__all__,
    "console_log_level",
    "discover_config_modules",
    "config_choices_of",
    "expand_multirun",
    "logging_overrides",
    "render_info",
    "render_result",
    "missing_defaults",
    "model_function",
    "PROG",
    "USAGE_ERROR",
    "LOG_LEVEL_ENV",
    "_as_list",
    "_connection",
    "_connection_of",
    "_instantiate",
    "_import_config_modules",
    "_hydra_metadata_files",
    "_hydra_task",
]


def test_every_name_is_importable_from_the_package():
    missing = [n for n in IMPORTED if not hasattr(runner, n)]
    assert missing == []


def test_each_part_holds_its_job():
    assert runner.run_model is _run.run_model and runner.RunResult is _run.RunResult
    assert runner.main is _cli.main and runner.console_log_level is _cli.console_log_level
    assert runner.config_choices_of is _task.config_choices_of and callable(_task.hydra_task)


def test_entry_point_and_module_run_resolve():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, attr = scripts["deriva-ml-run"].partition(":")
    assert getattr(importlib.import_module(module), attr) is runner.main
    assert (Path(runner.__file__).parent / "__main__.py").is_file()


def test_the_hydra_task_keeps_its_module_name_and_pickles_by_reference():
    from hydra._internal.utils import detect_calling_file_or_module_from_task_function, detect_task_name

    assert runner._hydra_task.__module__ == "deriva_ml.execution.runner"
    calling_file, calling_module = detect_calling_file_or_module_from_task_function(runner._hydra_task)
    assert detect_task_name(calling_file, calling_module) == "runner"  # the job's log is runner.log
    assert pickle.loads(pickle.dumps(runner._hydra_task)) is runner._hydra_task
