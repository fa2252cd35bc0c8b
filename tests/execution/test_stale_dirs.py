"""A recreated embedded catalog hands out the same RIDs again: old execution directories must not leak in."""

from __future__ import annotations

import shutil

from deriva_ml import DerivaML
from deriva_ml.execution import ExecutionConfiguration
from deriva_ml.testing import add_domain_schema, make_workflow


def run_once(home, name: str) -> tuple[str, dict]:
    ml = DerivaML("local", "again", home=home)
    add_domain_schema(ml)
    with ml.create_execution(ExecutionConfiguration(workflow=make_workflow(), description=name)) as exe:
        exe.asset_file_path("Model", f"{name}.pt").write_bytes(name.encode())
    uploaded = exe.upload_execution_outputs()
    models = {a.filename: a.rid for a in uploaded[f"{ml.domain_schema}/Model"]}
    rows = {r["RID"]: r["Filename"] for r in ml.catalog.query(ml.domain_schema, "Model")}
    ml.close()
    return exe.execution_rid, {"uploaded": models, "catalog": rows}


def test_recreated_catalog_does_not_reuse_old_execution_dirs(tmp_path):
    home = tmp_path / "home"
    rid1, _first = run_once(home, "first")
    shutil.rmtree(home / "catalogs" / "again")  # the user recreates the catalog; work dirs stay
    rid2, second = run_once(home, "second")
    assert rid1 == rid2  # the new catalog counts RIDs from the start again
    assert set(second["uploaded"]) == {"second.pt"}  # nothing of the old run's manifest
    assert set(second["catalog"].values()) == {"second.pt"}
    assert all(r in second["catalog"] for r in second["uploaded"].values())
    stale = list((home / "work" / "local_again" / "executions").glob(f"{rid1}.stale-*"))
    assert len(stale) == 1


def test_restore_ignores_a_manifest_of_another_row(tmp_path):
    home = tmp_path / "home"
    rid, _ = run_once(home, "first")
    work = home / "work" / "local_again" / "executions" / rid
    keep = tmp_path / "old-dir"
    shutil.copytree(work, keep)
    shutil.rmtree(home / "catalogs" / "again")
    ml = DerivaML("local", "again", home=home)
    add_domain_schema(ml)
    exe = ml.create_execution(ExecutionConfiguration(workflow=make_workflow(), description="new"))
    assert exe.execution_rid == rid
    shutil.rmtree(work)
    shutil.copytree(keep, work)  # an old directory reappears under the new row's RID
    restored = ml.restore_execution(rid)
    assert restored.configuration.description == "new"  # read from the catalog, not the stale manifest
    assert restored.upload_execution_outputs() == {}
