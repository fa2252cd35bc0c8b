"""deriva-ml-run as a subprocess on the demo project, against an embedded catalog in tmp."""

from __future__ import annotations

import json

import pytest

from deriva_ml.core.status import Status

from .conftest import Project, configuration, metadata_files, outputs, row_counts

pytestmark = pytest.mark.timeout(180)


def test_info_lists_groups_options_and_presets(project: Project) -> None:
    out = project.run("--info").check().stdout
    assert "model_config: default_model*, long, quick" in out
    assert "experiment: long_fit, quick_fit" in out
    assert "lr_sweep: +experiment=quick_fit model_config.learning_rate=0.05,0.1,0.5  -- Learning Rate Sweep" in out


def test_single_run_records_provenance(project: Project) -> None:
    out = project.run("model_config.epochs=3").check().stdout
    assert "Completed" in out
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
    out = project.run("dry_run=true", "+experiment=quick_fit").check().stdout
    assert "DRY RUN" in out
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
        assert configuration(ml, parent.rid)["datasets"] == []
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
