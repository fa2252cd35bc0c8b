"""deriva-ml-run's user errors, through the entry point in subprocesses: exit codes and one clear message."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

USAGE_ERROR = 2


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DERIVA_ML_CONFIG_MODULE"}
    env["DERIVA_ML_HOME"] = str(cwd / "home")
    env["PYTHONWARNINGS"] = "ignore"
    return subprocess.run(
        [sys.executable, "-m", "deriva_ml.execution.runner", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )


def test_finalize_sweep_of_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent"
    run = _run(tmp_path, "--finalize-sweep", str(missing))
    assert run.returncode == USAGE_ERROR, run.stdout + run.stderr
    assert f"--finalize-sweep {missing}: no such directory" in run.stderr
    assert "Traceback" not in run.stderr and "sweep finished" not in run.stdout
    assert not missing.exists()  # nothing was created


def test_finalize_sweep_of_a_directory_that_is_not_a_sweep_is_an_error(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    run = _run(tmp_path, "--finalize-sweep", str(plain))
    assert run.returncode == USAGE_ERROR, run.stdout + run.stderr
    assert "not a sweep directory of deriva-ml-run" in run.stderr
    assert list(plain.iterdir()) == []
    # a sweep directory whose jobs all failed before any parent existed: exit 1, said on stderr
    jobs = plain / ".deriva_ml" / "jobs"
    jobs.mkdir(parents=True)
    (jobs / "0.json").write_text('{"num": 0, "status": "Failed", "execution_rid": null, "error": "ValueError: x"}')
    run = _run(tmp_path, "--finalize-sweep", str(plain))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "job 0 failed before its execution existed" in run.stdout
    assert "no job of this sweep created a parent execution" in run.stderr


def test_bare_run_without_configs_says_what_to_configure(tmp_path: Path) -> None:
    run = _run(tmp_path, f"hydra.run.dir={tmp_path / 'out'}")
    assert run.returncode == USAGE_ERROR, run.stdout + run.stderr
    assert "Could not find" not in run.stderr and "Traceback" not in run.stderr
    assert "no 'workflow' option named 'default_workflow'" in run.stderr
    assert 'group="workflow", name="default_workflow"' in run.stderr
    assert "no config module was found" in run.stderr
    assert not (tmp_path / "home").exists()  # nothing was connected or created


def test_project_without_a_default_workflow_names_its_options(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "__init__.py").write_text(
        textwrap.dedent(
            """
            from hydra_zen import builds, store
            from deriva_ml.execution import Workflow

            def train(*, ml_instance, execution):
                print("MODEL RAN")

            store(builds(train, zen_partial=True), group="model_config", name="default_model")
            store(builds(Workflow, name="A", workflow_type="Training", populate_full_signature=True),
                  group="workflow", name="wf_a")
            """
        )
    )
    run = _run(tmp_path, f"hydra.run.dir={tmp_path / 'out'}")
    assert run.returncode == USAGE_ERROR, run.stdout + run.stderr
    assert "no 'workflow' option named 'default_workflow'" in run.stderr
    assert "pick one with workflow=NAME (wf_a)" in run.stderr
    assert "model_config" not in run.stderr  # that one is defined
    assert "config module(s) configs" in run.stderr
    # selecting the option runs
    ok = _run(tmp_path, "workflow=wf_a", f"hydra.run.dir={tmp_path / 'out'}")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "MODEL RAN" in ok.stdout
