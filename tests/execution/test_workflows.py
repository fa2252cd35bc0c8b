"""The spec's "Workflows" chapter against the embedded catalog."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from dulwich import porcelain

from deriva_ml import CatalogWorkflow, DerivaML, DerivaMLException
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.errors import DirtyWorkflow, UnknownTerm
from deriva_ml.execution import ExecutionConfiguration, Workflow


def test_create_workflow_validates_types_and_is_unregistered(ml):
    wf = ml.create_workflow(name="ResNet50 Training", workflow_type="Training", description="Fine-tune")
    assert isinstance(wf, Workflow) and wf.rid is None
    assert wf.url and wf.checksum  # detected from this test file
    assert wf.url.endswith("test_workflows.py") or "test_workflows.py" in wf.url
    with pytest.raises(UnknownTerm) as err:
        ml.create_workflow(name="x", workflow_type="Trainning")
    assert isinstance(err.value, DerivaMLException)
    assert "'Trainning'" in str(err.value) and "'Training'" in str(err.value)


def test_add_term_then_use_custom_type(ml):
    ml.add_term(table="Workflow_Type", term_name="Data_Augmentation", description="Workflows that augment data")
    wf = ml.create_workflow(name="Aug", workflow_type="Data_Augmentation", url="https://x/y.py", checksum="c1")
    rid = ml.add_workflow(wf)
    assert ml.lookup_workflow(rid).workflow_type == ("Data_Augmentation",)


def test_add_workflow_reuses_same_url_or_checksum(ml):
    a = Workflow(name="A", workflow_type="Training", url="https://github.com/o/r/blob/1/a.py", checksum="111")
    rid = ml.add_workflow(a)
    assert ml.add_workflow(a) == rid
    moved = Workflow(name="A moved", workflow_type="Training", url="https://github.com/o/r/blob/2/b.py", checksum="111")
    assert ml.add_workflow(moved) == rid  # same checksum
    other = Workflow(name="B", workflow_type="Inference", url="https://github.com/o/r/blob/1/a.py", checksum="999")
    assert ml.add_workflow(other) == rid  # same URL
    assert len(ml.catalog.query(ML_SCHEMA, "Workflow")) == 1


def test_override_url_and_checksum_explicitly_and_by_env(ml, monkeypatch):
    wf = Workflow(
        name="Custom Pipeline",
        workflow_type="Training",
        url="https://github.com/org/repo/blob/main/pipeline.py",
        checksum="abc123def456",
    )
    rid = ml.add_workflow(wf)
    got = ml.lookup_workflow(rid)
    assert (got.url, got.checksum) == ("https://github.com/org/repo/blob/main/pipeline.py", "abc123def456")
    monkeypatch.setenv("DERIVA_ML_WORKFLOW_URL", "https://github.com/org/repo/blob/main/env.py")
    monkeypatch.setenv("DERIVA_ML_WORKFLOW_CHECKSUM", "feedbeef")
    env_wf = ml.create_workflow(name="Env", workflow_type="Training")
    assert (env_wf.url, env_wf.checksum) == ("https://github.com/org/repo/blob/main/env.py", "feedbeef")


def test_lookup_find_and_update_write_through(ml):
    rid = ml.add_workflow(Workflow(name="W", workflow_type="Training", url="https://x/w.py", checksum="c"))
    wf = ml.lookup_workflow(rid)
    assert isinstance(wf, CatalogWorkflow) and wf.name == "W"
    assert ml.lookup_workflow_by_url("https://x/w.py").rid == rid
    assert ml.lookup_workflow_by_url("c").rid == rid
    wf.description = "Updated: now includes data augmentation"
    wf.workflow_type = ["Training", "Evaluation"]
    again = ml.lookup_workflow(rid)
    assert again.description == "Updated: now includes data augmentation"
    assert set(again.workflow_type) == {"Training", "Evaluation"}
    wf.workflow_type = "Training"
    assert ml.lookup_workflow(rid).workflow_type == ("Training",)
    with pytest.raises(UnknownTerm):
        wf.workflow_type = "Nope"
    assert ml.lookup_workflow(rid).workflow_type == ("Training",)  # nothing written
    with pytest.raises(AttributeError):
        wf.url = "https://elsewhere"
    names = [f"{w.name} ({w.workflow_type}): {w.url}" for w in ml.find_workflows()]
    assert names == ["W (('Training',)): https://x/w.py"]
    with pytest.raises(DerivaMLException):
        ml.lookup_workflow_by_url("https://never/seen.py")


def _repo_with_script(tmp_path: Path) -> Path:
    repo = tmp_path / "project"
    repo.mkdir()
    porcelain.init(str(repo))
    (repo / "train.py").write_text(
        textwrap.dedent(
            """
            import json, sys
            from deriva_ml import DerivaML
            ml = DerivaML("local", "wf", home=sys.argv[1], allow_dirty=(sys.argv[2] == "dirty-ok"))
            wf = ml.create_workflow(name="Train", workflow_type="Training", description="d")
            print(json.dumps({"rid": ml.add_workflow(wf), "url": wf.url, "checksum": wf.checksum}))
            """
        )
    )
    porcelain.add(str(repo), paths=[str(repo / "train.py")])
    porcelain.remote_add(str(repo), "origin", "git@github.com:org/repo.git")
    porcelain.commit(str(repo), message=b"train", author=b"A <a@b.c>", committer=b"A <a@b.c>")
    return repo


def _run(repo: Path, home: Path, mode: str = "dirty-ok") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DERIVA_ML_WORKFLOW")}
    return subprocess.run(
        [sys.executable, str(repo / "train.py"), str(home), mode],
        capture_output=True,
        text=True,
        cwd=repo,
        env=env,
        timeout=120,
    )


def test_same_committed_script_twice_yields_one_row(tmp_path):
    repo = _repo_with_script(tmp_path)
    home = tmp_path / "home"
    first = _run(repo, home)
    second = _run(repo, home)
    assert first.returncode == 0, first.stderr
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert a == b
    with porcelain.open_repo_closing(str(repo)) as r:
        sha = r.head().decode()
    assert a["url"] == f"https://github.com/org/repo/blob/{sha}/train.py"
    blob = subprocess.run(["git", "hash-object", str(repo / "train.py")], capture_output=True, text=True).stdout.strip()
    assert a["checksum"] == blob
    ml = DerivaML("local", "wf", home=home)
    assert len(ml.catalog.query(ML_SCHEMA, "Workflow")) == 1


def test_dirty_script_warns_or_refuses(tmp_path):
    repo = _repo_with_script(tmp_path)
    with (repo / "train.py").open("a") as f:
        f.write("# local change\n")
    home = tmp_path / "home"
    warned = _run(repo, home, "dirty-ok")
    assert warned.returncode == 0
    assert "train.py" in warned.stderr and "uncommitted" in warned.stderr.lower()
    refused = _run(repo, home, "strict")
    assert refused.returncode != 0
    assert DirtyWorkflow.__name__ in refused.stderr and "train.py" in refused.stderr


def test_workflow_in_config_or_argument(ml):
    wf = ml.create_workflow(name="W", workflow_type="Training", url="https://x/a.py", checksum="k")
    with ml.create_execution(ExecutionConfiguration(description="Training run"), workflow=wf) as exe:
        pass
    assert exe.workflow.rid == ml.lookup_workflow_by_url("https://x/a.py").rid
