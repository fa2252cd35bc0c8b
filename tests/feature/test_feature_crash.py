"""Crash safety of feature values: a process SIGKILLed after ``add_features`` (or between the catalog's insert
of the values and the manifest's record of it) loses nothing and writes nothing twice once restored.

A child process runs a real execution on the embedded catalog (and on the live server when set) and is killed;
this process restores the execution and uploads. Each value must be in the catalog exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deriva_ml import DerivaML

pytestmark = pytest.mark.slow

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from deriva_ml import DerivaML
    from deriva_ml.core.schema_defs import ColumnDef
    from deriva_ml.execution import ExecutionConfiguration
    from deriva_ml.testing import add_domain_schema, add_subjects, make_workflow

    home, mode, host, catalog = sys.argv[1:5]
    ml = DerivaML(host, catalog, home=home)
    add_domain_schema(ml)
    ml.create_vocabulary("Diagnosis", "Diagnoses")
    for t in ("Normal", "Glaucoma"):
        ml.add_term("Diagnosis", t, t)
    Pred = ml.create_feature("Subject", "Prediction", terms=["Diagnosis"], assets=["Model"],
                             metadata=[ColumnDef("Confidence", "float4")])
    subjects = add_subjects(ml, [f"s{i}" for i in range(20)])
    print("SUBJECTS", " ".join(subjects), flush=True)

    if mode == "after-feature-insert":
        inner_apply = ml.catalog.apply
        def apply(batch):
            result = inner_apply(batch)
            if any(getattr(e, "table", "").startswith("Execution_Subject_") for e in batch.effects):
                os.kill(os.getpid(), signal.SIGKILL)   # the catalog has the values, the manifest does not know
            return result
        ml.catalog.apply = apply

    exe = ml.create_execution(ExecutionConfiguration(workflow=make_workflow("crash", "Prediction")))
    print("RID", exe.execution_rid, flush=True)
    with exe:
        model = exe.asset_file_path("Model", "model.json")
        model.write_text('{"weights": [1, 2, 3]}')
        exe.add_features([Pred(Subject=s, Diagnosis=("Normal", "Glaucoma")[i % 2], Model=model, Confidence=0.5)
                          for i, s in enumerate(subjects)])
        if mode == "after-add":
            os.kill(os.getpid(), signal.SIGKILL)
    exe.upload_execution_outputs()
    print("DONE", flush=True)
    """
)


@pytest.fixture(params=["embedded", "live"])
def target(request) -> tuple[str, str]:
    if request.param == "embedded":
        return ("local", "crash")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "live"))
    from live_support import new_live_catalog

    host, catalog_id, _ = new_live_catalog("crash")
    return (host, catalog_id)


def open_target(target: tuple[str, str], home: Path) -> DerivaML:
    host, catalog_id = target
    if host == "local":
        return DerivaML(host, catalog_id, home=home)
    from live_support import live_credential

    return DerivaML(host, catalog_id, credential=live_credential(), home=home)


@pytest.mark.parametrize("mode", ["after-add", "after-feature-insert"])
def test_killed_after_add_features_then_restored_writes_each_value_once(tmp_path, mode, target) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    home = tmp_path / "home"
    proc = subprocess.run(
        [sys.executable, str(script), str(home), mode, *target],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "DERIVA_ML_HOME": str(home)},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    rid = next(line.split()[1] for line in lines if line.startswith("RID"))
    subjects = next(line.split()[1:] for line in lines if line.startswith("SUBJECTS"))
    ml = open_target(target, home)
    try:
        before = ml.catalog.query(ml.domain_schema, "Execution_Subject_Prediction")
        assert len(before) == (20 if mode == "after-feature-insert" else 0)
        exe = ml.restore_execution(rid)
        up = exe.upload_execution_outputs()
        exe.upload_execution_outputs()  # and once more: nothing new
        model_rid = up[f"{ml.domain_schema}/Model"][0].rid
        values = ml.list_feature_values("Subject", "Prediction")
        assert sorted(v.Subject for v in values) == sorted(subjects)  # each exactly once
        assert {(v.Model, v.Execution) for v in values} == {(model_rid, rid)}
    finally:
        ml.close()
