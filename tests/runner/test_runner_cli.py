"""deriva-ml-run as a subprocess on the demo project, against an embedded catalog in tmp."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from deriva_ml.core.status import Status

from .conftest import Project, configuration, demo_inputs, metadata_files, outputs, row_counts

pytestmark = pytest.mark.timeout(180)


def test_info_lists_groups_options_and_presets(project: Project) -> None:
    out = project.run("--info").check().stdout
    assert "model_config: default_model*, long, quick" in out
    assert "experiment: long_fit, quick_fit" in out
    assert "lr_sweep: +experiment=quick_fit model_config.learning_rate=0.05,0.1,0.5  -- Learning Rate Sweep" in out


def test_single_run_records_provenance(project: Project) -> None:
    run = project.run("model_config.epochs=3").check()
    out = run.stdout
    assert "Completed" in out
    # the console is quiet by default: one progress line, no INFO events (the job's log file has them)
    assert [line for line in out.splitlines() if line.strip()] == [
        line for line in out.splitlines() if "deriva-ml-run:" in line
    ]
    assert "event=" not in out + run.stderr
    assert "event='status'" in (project.tmp / "outputs" / "runner.log").read_text()
    with project.ml() as ml:
        (exe,) = ml.find_executions()
        assert exe.status is Status.completed
        cfg = configuration(ml, exe.rid)
        assert cfg["config_choices"] == {
            "deriva_ml": "default_deriva",
            "datasets": "default_dataset",
            "assets": "default_asset",
            "workflow": "default_workflow",
            "model_config": "default_model",
        }
        assert cfg["argv"] == ["deriva-ml-run", "model_config.epochs=3"]
        # the workflow points at the model's source file, not at the runner
        assert cfg["workflow"]["url"].endswith("examples/demo_project/models/linear.py")
        (wf,) = ml.find_workflows()
        assert wf.name == "Linear Fit Training" and wf.workflow_type == ("Training",)
        meta = metadata_files(ml, exe.rid)
        hydra = {name: types for name, types in meta.items() if name.startswith("hydra-")}
        assert {n.split("-", 2)[2] for n in hydra} == {"config.yaml", "overrides.yaml", "hydra.yaml"}
        assert all(types == {"Hydra_Config"} for types in hydra.values())
        assert meta["configuration.json"] == {"Deriva_Config"}
        assert (
            json.loads((ml.execution_dir(exe.rid) / "outputs" / "Execution_Metadata" / "metrics.json").read_text())[
                "epochs"
            ]
            == 3
        )
        assert "model.json" in outputs(ml, exe.rid)


def test_experiment_preset_and_host_catalog_shortcuts(project: Project) -> None:
    project.run("+experiment=quick_fit", "--host", "local", "--catalog", "other").check()
    with project.ml() as ml:
        assert ml.find_executions() == []  # --catalog chose another embedded catalog
    from deriva_ml import DerivaML

    with DerivaML("local", "other", home=project.home) as ml:
        (exe,) = ml.find_executions()
        cfg = configuration(ml, exe.rid)
        assert cfg["config_choices"]["experiment"] == "quick_fit"
        assert cfg["config_choices"]["model_config"] == "quick"
        assert "deriva_ml.catalog_id=other" in cfg["argv"]
        assert cfg["description"] == "Quick linear fit: 5 epochs at learning rate 0.5."


def test_dry_run_writes_nothing(project: Project) -> None:
    project.run("model_config.epochs=2").check()  # creates the catalog and a first execution
    with project.ml() as ml:
        before = row_counts(ml)
    out = project.run("-v", "dry_run=true", "+experiment=quick_fit").check().stdout
    assert "DRY RUN" in out
    assert "event='status'" in out  # -v shows INFO events on the console
    with project.ml() as ml:
        assert row_counts(ml) == before


@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_multirun_preset_makes_one_parent_and_ordered_children(project: Project, launcher: str) -> None:
    extra = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
    out = project.run("+multirun=lr_sweep", *extra).check().stdout
    assert "sweep parent" in out
    with project.ml() as ml:
        executions = ml.find_executions()
        assert len(executions) == 4
        parents = [e for e in executions if ml.list_nested_executions(e.rid)]
        assert len(parents) == 1
        parent = parents[0]
        assert parent.status is Status.completed
        assert parent.description.startswith("## Learning Rate Sweep")
        parent_cfg = configuration(ml, parent.rid)
        assert parent_cfg["datasets"] == []
        # the parent records the sweep as a whole: its choices and its overrides as given
        assert parent_cfg["config_choices"] == {
            "multirun": "lr_sweep",
            "experiment": "quick_fit",
            "model_config": "quick",
            "workflow": "default_workflow",
            "deriva_ml": "default_deriva",
            "datasets": "default_dataset",
            "assets": "default_asset",
        }
        assert parent_cfg["argv"][:2] == ["deriva-ml-run", "--multirun"]
        assert "model_config.learning_rate=0.05,0.1,0.5" in parent_cfg["argv"]
        assert "+multirun=lr_sweep" in parent_cfg["argv"]
        assert parent_cfg["description"].startswith("## Learning Rate Sweep")
        links = ml.catalog.query("deriva-ml", "Execution_Execution", {"Execution": parent.rid})
        assert sorted(link["Sequence"] for link in links) == [0, 1, 2]
        rates = {}
        for link in links:
            child = link["Nested_Execution"]
            assert ml.lookup_execution(child).status is Status.completed
            cfg = configuration(ml, child)
            assert cfg["config_choices"]["multirun"] == "lr_sweep"
            assert cfg["config_choices"]["experiment"] == "quick_fit"
            rate = next(a for a in cfg["argv"] if a.startswith("model_config.learning_rate="))
            rates[link["Sequence"]] = rate.split("=")[1]
            assert f"Sweep job {link['Sequence']}" in ml.lookup_execution(child).description
        assert rates == {0: "0.05", 1: "0.1", 2: "0.5"}


def test_plain_multirun_flag(project: Project) -> None:
    project.run("-m", "model_config.epochs=1,2", "model_config.learning_rate=0.1").check()
    with project.ml() as ml:
        executions = ml.find_executions()
        assert len(executions) == 3
        (parent,) = [e for e in executions if ml.list_nested_executions(e.rid)]
        assert parent.status is Status.completed
        assert parent.description.startswith("## Multirun sweep")
        children = ml.list_nested_executions(parent.rid)
        assert [configuration(ml, c.rid)["argv"][1] for c in children] == [
            "model_config.epochs=1",
            "model_config.epochs=2",
        ]
        parent_cfg = configuration(ml, parent.rid)
        assert parent_cfg["config_choices"]["model_config"] == "default_model"
        assert "multirun" not in parent_cfg["config_choices"]
        assert parent_cfg["argv"] == [
            "deriva-ml-run",
            "--multirun",
            "model_config.epochs=1,2",
            "model_config.learning_rate=0.1",
        ]


def test_sweep_with_a_failing_job_fails_the_parent(project: Project) -> None:
    run = project.run("+multirun=diverging_sweep")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "job 2 FAILED" in run.stdout
    with project.ml() as ml:
        (parent,) = [e for e in ml.find_executions() if ml.list_nested_executions(e.rid)]
        assert parent.status is Status.failed
        assert "2 Completed, 1 Failed" in parent.status_detail
        children = ml.list_nested_executions(parent.rid)
        assert [c.status for c in children] == [Status.completed, Status.completed, Status.failed]
        assert "FloatingPointError" in children[2].status_detail


def test_failing_single_run_is_recorded_failed(project: Project) -> None:
    run = project.run("model_config.learning_rate=2.0", "model_config.fail_above=1.0")
    assert run.returncode != 0
    with project.ml() as ml:
        (exe,) = ml.find_executions()
        assert exe.status is Status.failed
        assert "metadata" not in outputs(ml, exe.rid)  # nothing bogus; metadata files were uploaded early
        assert "configuration.json" in metadata_files(ml, exe.rid)


def test_unknown_preset_names_the_fix(project: Project) -> None:
    run = project.run("+multirun=nope")
    assert run.returncode != 0
    assert "no multirun preset 'nope'" in run.stderr


def test_dataset_and_asset_inputs(project: Project) -> None:
    """datasets=points datasets.rid=... and assets=warm_start assets.rid=...: the bag's files are the data."""
    with project.ml() as ml:
        made = demo_inputs(ml)
        version = ml.lookup_dataset(made.dataset_rid).current_version
        before = {e.rid for e in ml.find_executions()}
    project.run(
        "datasets=points",
        f"datasets.rid={made.dataset_rid}",
        "assets=warm_start",
        f"assets.rid={made.model_rid}",
        "model_config.epochs=3",
    ).check()
    with project.ml() as ml:
        (exe,) = [e for e in ml.find_executions() if e.rid not in before]
        assert exe.status is Status.completed
        links = ml.catalog.query("deriva-ml", "Dataset_Execution", {"Execution": exe.rid})
        assert [(x["Dataset"], x["Asset_Role"]) for x in links] == [(made.dataset_rid, "Input")]
        asset_links = ml.catalog.query("deriva-ml", "Execution_Asset_Execution", {"Execution": exe.rid})
        assert (made.model_rid, "Input") in {(x["Execution_Asset"], x["Asset_Role"]) for x in asset_links}
        cfg = configuration(ml, exe.rid)
        assert cfg["config_choices"]["datasets"] == "points"
        assert cfg["config_choices"]["assets"] == "warm_start"
        (ds,) = cfg["datasets"]
        assert ds["rid"] == made.dataset_rid
        assert ds["version"] == {"major": version.major, "minor": version.minor, "patch": version.patch}
        assert cfg["assets"] == [{"rid": made.model_rid, "cache": True}]
        assert f"datasets.rid={made.dataset_rid}" in cfg["argv"]
        metrics = json.loads(
            (ml.execution_dir(exe.rid) / "outputs" / "Execution_Metadata" / "metrics.json").read_text()
        )
        assert metrics["data_files"] == ["points_0.csv", "points_1.csv", "points_2.csv"]
        assert metrics["n_points"] == 60 and metrics["warm_start"] is True
        # cache=True: the input asset is a link into the MD5-addressed cache
        (start,) = (ml.execution_dir(exe.rid) / "inputs" / "assets").rglob("*model.json")
        assert start.is_symlink() and Path(os.readlink(start)).is_relative_to(ml.cache_dir)


def test_missing_dataset_rid_names_the_fix(project: Project) -> None:
    run = project.run("datasets=points")
    assert run.returncode != 0
    assert "Missing mandatory value: datasets.rid" in run.stderr


@pytest.mark.parametrize("recover", ["finalize", "abort_stale"])
def test_killed_launcher_leaves_a_recoverable_sweep(project: Project, recover: str) -> None:
    """SIGKILL the launching process while job 1 runs; job 2 never starts. Recovery aborts the running
    child and derives the parent Aborted (2 of 3 jobs ran)."""
    project.kill_launcher_when("-m", "model_config.sleep=0,60,0", "model_config.epochs=1")
    with project.ml() as ml:
        (parent,) = [e for e in ml.find_executions() if ml.list_nested_executions(e.rid)]
        assert parent.status is Status.running  # nobody finalized it
        if recover == "abort_stale":
            aborted = {r.rid for r in ml.abort_stale_executions()}
            assert parent.rid in aborted  # its owner (the launcher) is gone too
    run = project.run("--finalize-sweep", str(project.sweep_dir))
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"sweep parent {parent.rid} Aborted" in run.stdout
    with project.ml() as ml:
        children = ml.list_nested_executions(parent.rid)
        assert [c.status for c in children] == [Status.completed, Status.aborted]
        final = ml.lookup_execution(parent.rid)
        assert final.status is Status.aborted
        if recover == "finalize":
            assert "Sweep ended early: 2 of 3 jobs ran: 2 jobs: 1 Aborted, 1 Completed" in final.status_detail
    # finalizing again changes nothing
    again = project.run("--finalize-sweep", str(project.sweep_dir))
    assert again.returncode == 1 and f"sweep parent {parent.rid} Aborted" in again.stdout
