"""deriva-ml-run-notebook as a subprocess: a successful and a failing notebook."""

from __future__ import annotations

import json

import nbformat
import pytest

from deriva_ml.core.status import Status

from .conftest import DEMO, Project, configuration, metadata_files, outputs, row_counts

pytestmark = pytest.mark.timeout(180)
NOTEBOOK = "notebooks/fit_report.ipynb"
MODULE = "deriva_ml.execution.notebook_runner"


def test_notebook_success(project: Project) -> None:
    out = project.run(NOTEBOOK, "-p", "learning_rate", "0.5", "-p", "epochs", "4", module=MODULE).check().stdout
    assert "Completed" in out
    with project.ml() as ml:
        (exe,) = ml.find_executions()
        assert exe.status is Status.completed
        assert outputs(ml, exe.rid) == {"fit_report.ipynb": {"Notebook_Output"}, "model.json": {"Execution_Asset"}}
        assert "report.json" in metadata_files(ml, exe.rid)
        cfg = configuration(ml, exe.rid)
        assert cfg["workflow"]["url"].endswith("examples/demo_project/notebooks/fit_report.ipynb")
        assert cfg["workflow"]["is_notebook"] is True
        # the project's workflow option named after the notebook is the default
        assert cfg["config_choices"]["workflow"] == "fit_report"
        assert cfg["workflow"]["name"] == "Linear Fit Report"
        assert cfg["workflow"]["workflow_type"] == ["Analysis"]
        assert cfg["argv"][1:5] == [NOTEBOOK, "-p", "learning_rate", "0.5"]
        executed = nbformat.read(ml.execution_dir(exe.rid) / "outputs" / "Execution_Asset" / "fit_report.ipynb", 4)
        injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert injected and "learning_rate = 0.5" in injected[0].source and "epochs = 4" in injected[0].source
        tags = [c.metadata.get("tags", []) for c in executed.cells]
        assert tags.index(["injected-parameters"]) == tags.index(["parameters"]) + 1
        # the kernel saw the runner's provenance and execution
        printed = "".join(o.get("text", "") for o in executed.cells[3].outputs)
        assert exe.rid in printed and "fit_report.ipynb" in printed
        metrics = json.loads((ml.execution_dir(exe.rid) / "outputs" / "Execution_Metadata" / "report.json").read_text())
        assert metrics["epochs"] == 4


def test_notebook_failure_keeps_partial_notebook(project: Project) -> None:
    run = project.run(NOTEBOOK, "-p", "fail", "true", module=MODULE)
    assert run.returncode == 1
    assert "the notebook was asked to fail" in run.stderr
    with project.ml() as ml:
        (exe,) = ml.find_executions()
        assert exe.status is Status.failed
        assert "asked to fail" in exe.status_detail
        assert outputs(ml, exe.rid)["fit_report.ipynb"] == {"Notebook_Output"}
        executed = nbformat.read(ml.execution_dir(exe.rid) / "outputs" / "Execution_Asset" / "fit_report.ipynb", 4)
        errors = [
            o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"
        ]
        assert errors and errors[0]["ename"] == "RuntimeError"
    assert (DEMO / NOTEBOOK).read_text().count("injected-parameters") == 0  # the source notebook is untouched


def test_notebook_dry_run_writes_nothing(project: Project) -> None:
    with project.ml() as ml:
        before = row_counts(ml)
    run = project.run(NOTEBOOK, "--dry-run", "-p", "epochs", "2", "workflow=linear_evaluation", module=MODULE).check()
    assert "DRY RUN" in run.stdout
    executed_path = run.stdout.strip().rsplit("executed notebook: ", 1)[1]
    executed = nbformat.read(executed_path, 4)
    printed = "".join(o.get("text", "") for o in executed.cells[3].outputs)
    assert "0000" in printed  # the kernel's execution is a dry run too
    with project.ml() as ml:
        assert row_counts(ml) == before


def test_secret_parameters_are_not_published(project: Project) -> None:
    """``-p api_token X``: the kernel gets X; the executed notebook that is kept and uploaded does not hold it."""
    secret = "sekrit-5f0e1d2c-notebook"
    run = project.run(NOTEBOOK, "-p", "api_token", secret, "-p", "epochs", "2", module=MODULE).check()
    assert secret not in run.stdout + run.stderr
    with project.ml() as ml:
        (exe,) = ml.find_executions()
        assert exe.status is Status.completed
        kept = ml.execution_dir(exe.rid) / "outputs" / "Execution_Asset" / "fit_report.ipynb"
        executed = nbformat.read(kept, 4)
        (injected,) = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert "api_token = '<redacted>'" in injected.source and "epochs = 2" in injected.source
    leaked = [p for p in project.home.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert not leaked, f"the secret parameter is in {leaked}"
