"""Execution lifecycle on the embedded catalog: statuses, metadata files, outputs, uploads, nesting."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from deriva_ml import DerivaML, DerivaMLException
from deriva_ml.core.definitions import ML_SCHEMA, Status
from deriva_ml.core.errors import InvalidFileName, InvalidTransition, UnknownColumn, UnknownTable, UnknownTerm
from deriva_ml.execution import ExecutionConfiguration


def rows(ml: DerivaML, table: str, schema: str = ML_SCHEMA, **where):
    return ml.catalog.query(schema, table, where or None)


def test_context_manager_sets_running_then_completed_with_duration(ml, workflow):
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow, description="Training run"))
    assert exe.status is Status.pending
    with exe:
        assert ml.lookup_execution(exe.execution_rid).status is Status.running
        exe.update_status(Status.running, "Training epoch 5/10")
        row = rows(ml, "Execution", RID=exe.execution_rid)[0]
        assert (row["Status"], row["Status_Detail"]) == ("Running", "Training epoch 5/10")
    row = rows(ml, "Execution", RID=exe.execution_rid)[0]
    assert row["Status"] == "Completed"
    assert row["Duration"] and row["Duration"].count(":") == 2
    assert exe.record.duration is not None and exe.record.duration >= 0
    assert [h.to_status for h in exe.record.history] == [
        Status.initializing,
        Status.pending,
        Status.running,
        Status.running,
        Status.completed,
    ]


def test_exception_sets_failed_with_detail_and_reraises(ml, workflow):
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow))
    with pytest.raises(ZeroDivisionError), exe:
        1 / 0  # noqa: B018
    row = rows(ml, "Execution", RID=exe.execution_rid)[0]
    assert row["Status"] == "Failed"
    assert row["Status_Detail"].startswith("ZeroDivisionError: division by zero")


def test_invalid_transition_raises_before_any_write(ml, workflow):
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow))
    before = rows(ml, "Execution", RID=exe.execution_rid)[0]
    with pytest.raises(InvalidTransition, match="'Pending' to 'Completed'"):
        exe.update_status(Status.completed, "too early")
    assert rows(ml, "Execution", RID=exe.execution_rid)[0] == before
    assert exe.status is Status.pending


def test_workflow_is_required(ml):
    with pytest.raises(DerivaMLException, match="no workflow"):
        ml.create_execution(ExecutionConfiguration(description="x"))


def test_workflow_as_separate_argument_and_dedup(ml, workflow):
    e1 = ml.create_execution(ExecutionConfiguration(description="a"), workflow=workflow)
    e2 = ml.create_execution(ExecutionConfiguration(workflow=workflow, description="b"))
    assert e1.workflow.rid == e2.workflow.rid
    assert len(rows(ml, "Workflow")) == 1


def test_metadata_files_are_uploaded_at_initialization(ml, workflow, tmp_path):
    hydra = tmp_path / "hydra-20260101-config.yaml"
    hydra.write_text("a: 1\n")
    exe = ml.create_execution(
        ExecutionConfiguration(workflow=workflow, description="x", config_choices={"model_config": "quick"}),
        metadata_files=[(hydra, "Hydra_Config")],
    )
    # nothing else happened yet: the files are in the catalog already, linked as Outputs
    links = rows(ml, "Execution_Metadata_Execution", Execution=exe.execution_rid)
    assert {link["Asset_Role"] for link in links} == {"Output"}
    assets = ml.catalog.query(ML_SCHEMA, "Execution_Metadata", {"RID": [link["Execution_Metadata"] for link in links]})
    types = {
        t["Execution_Metadata"]: t["Asset_Type"]
        for t in ml.catalog.query(
            ML_SCHEMA, "Execution_Metadata_Asset_Type", {"Execution_Metadata": [a["RID"] for a in assets]}
        )
    }
    by_type = {types[a["RID"]]: a["Filename"] for a in assets}
    assert by_type["Deriva_Config"] == "configuration.json"
    assert by_type["Execution_Config"] == "uv.lock"
    assert by_type["Hydra_Config"] == hydra.name
    assert by_type["Runtime_Env"].startswith("environment_snapshot_") and by_type["Runtime_Env"].endswith(".txt")
    cfg = json.loads((exe.working_dir / "metadata" / "configuration.json").read_text())
    assert cfg["config_choices"] == {"model_config": "quick"}
    assert cfg["workflow"]["rid"] == exe.workflow.rid


def test_planted_secrets_never_reach_files_or_catalog(ml, workflow, monkeypatch):
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    password = "s3cr3t-Pa55word-zz9"
    monkeypatch.setenv("MY_SERVICE_TOKEN", token)
    monkeypatch.setenv("INNOCENT_LOOKING", token)
    monkeypatch.setenv("DATABASE_URL", f"postgres://alice:{password}@db.example.org/x")
    exe = ml.create_execution(
        ExecutionConfiguration(workflow=workflow, argv=["train.py", "--api-token", token, f"--password={password}"])
    )
    with exe:
        pass
    exe.upload_execution_outputs()
    home = Path(ml.home)
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert token.encode() not in data, path
            assert password.encode() not in data, path
    snap = next((exe.working_dir / "metadata").glob("environment_snapshot_*.txt"))
    env = json.loads(snap.read_text())["environment"]
    assert env["MY_SERVICE_TOKEN"] == "<redacted>" and env["INNOCENT_LOOKING"] == "<redacted>"
    assert env["DATABASE_URL"] == "postgres://db.example.org/x"


def test_asset_file_path_methods(ml, workflow, tmp_path):
    existing = tmp_path / "file.png"
    existing.write_bytes(b"png-bytes")
    temp = tmp_path / "temp.png"
    temp.write_bytes(b"temp-bytes")
    subject = ml.catalog.query(ml.domain_schema, "Subject")  # none yet
    assert subject == []
    from deriva_ml.testing import add_subjects

    (subject_rid,) = add_subjects(ml, ["s1"])
    with ml.create_execution(ExecutionConfiguration(workflow=workflow)) as exe:
        p1 = exe.asset_file_path(asset_name="Model", file_name="model.pt")
        p1.write_bytes(b"model")
        p2 = exe.asset_file_path(asset_name="Image", file_name=str(existing), copy_file=True)
        p3 = exe.asset_file_path(asset_name="Image", file_name=str(temp), rename_file="processed_image.png")
        p4 = exe.asset_file_path(asset_name="Image", file_name="mask.png", asset_types=["Segmentation_Mask", "Derived"])
        p4.write_bytes(b"mask")
        p5 = exe.asset_file_path(
            asset_name="Image",
            file_name="scan.jpg",
            metadata={"Subject": subject_rid, "Acquisition_Date": "2026-01-15"},
        )
        p5.write_bytes(b"scan")
        p5.set_metadata("Acquisition_Time", "14:30:00")
        assert p2.is_file() and not p2.is_symlink()
        assert p3.is_symlink() and p3.name == "processed_image.png"
        with pytest.raises(UnknownTable, match="Nope"):
            exe.asset_file_path("Nope", "x.bin")
        with pytest.raises(UnknownTerm, match="Not_A_Type"):
            exe.asset_file_path("Image", "y.png", asset_types=["Not_A_Type"])
        with pytest.raises(UnknownColumn, match="Colour"):
            exe.asset_file_path("Image", "z.png", metadata={"Colour": "red"})
        with pytest.raises(InvalidFileName):
            exe.asset_file_path("Image", "../escape.png")
        with pytest.raises(UnknownColumn):
            p5.set_metadata("Bogus", 1)
    uploaded = exe.upload_execution_outputs()
    images = {a.filename: a for a in uploaded[f"{ml.domain_schema}/Image"]}
    assert set(images) == {"file.png", "processed_image.png", "mask.png", "scan.jpg"}
    assert set(images["mask.png"].asset_types) == {"Segmentation_Mask", "Derived"}
    scan = ml.catalog.query(ml.domain_schema, "Image", {"RID": images["scan.jpg"].rid})[0]
    assert scan["Subject"] == subject_rid and scan["Acquisition_Time"] == "14:30:00"
    assert str(scan["Acquisition_Date"]).startswith("2026-01-15")
    links = ml.catalog.query(ml.domain_schema, "Image_Execution", {"Execution": exe.execution_rid})
    assert len(links) == 4 and {link["Asset_Role"] for link in links} == {"Output"}


@pytest.mark.parametrize("name", ["model.tar.gz", "my model.pt", "README", "résumé ü.txt", ".hidden"])
def test_awkward_file_names_are_uploaded(ml, workflow, name):
    with ml.create_execution(ExecutionConfiguration(workflow=workflow)) as exe:
        exe.asset_file_path("Model", name).write_bytes(name.encode())
    uploaded = exe.upload_execution_outputs()
    assert [a.filename for a in uploaded[f"{ml.domain_schema}/Model"]] == [name]
    row = ml.catalog.query(ml.domain_schema, "Model", {"Filename": name})[0]
    dest = Path(ml.working_dir) / "check" / "x"
    ml.store.get(row["URL"], dest, md5=row["MD5"])
    assert dest.read_bytes() == name.encode()


def test_failed_execution_uploads_partial_outputs_and_upload_twice_is_idempotent(ml, workflow):
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow))
    with pytest.raises(RuntimeError), exe:
        exe.asset_file_path("Model", "partial.pt").write_bytes(b"partial")
        raise RuntimeError("diverged")
    first = exe.upload_execution_outputs()
    second = exe.upload_execution_outputs()
    assert first == second
    assert len(ml.catalog.query(ml.domain_schema, "Model")) == 1
    assert len(ml.catalog.query(ml.domain_schema, "Model_Execution", {"Execution": exe.execution_rid})) == 1
    assert ml.lookup_execution(exe.execution_rid).status is Status.failed


def test_missing_registered_file_is_reported_and_the_rest_uploaded(ml, workflow):
    with ml.create_execution(ExecutionConfiguration(workflow=workflow)) as exe:
        exe.asset_file_path("Model", "written.pt").write_bytes(b"x")
        exe.asset_file_path("Model", "never_written.pt")
    from deriva_ml.core.errors import UploadFailed

    with pytest.raises(UploadFailed, match="never_written.pt"):
        exe.upload_execution_outputs()
    assert [r["Filename"] for r in ml.catalog.query(ml.domain_schema, "Model")] == ["written.pt"]


class CountingCatalog:
    """Wraps a real Catalog and counts calls per method (a port wrapper, not a mock)."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[tuple[str, str]] = []

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if name in ("apply", "query", "resolve_rid"):

            def wrapped(*a, **k):
                self.calls.append((name, a[1] if name == "query" else ""))
                return attr(*a, **k)

            return wrapped
        return attr


def test_thousand_outputs_make_constant_catalog_requests(ml, workflow):
    counting = CountingCatalog(ml.catalog)
    ml.catalog = counting
    with ml.create_execution(ExecutionConfiguration(workflow=workflow)) as exe:
        for i in range(1000):
            exe.asset_file_path("Model", f"m{i:04d}.bin").write_bytes(f"{i}".encode())
    counting.calls.clear()
    exe.upload_execution_outputs()
    applies = [c for c in counting.calls if c[0] == "apply"]
    queries = [c for c in counting.calls if c[0] == "query"]
    assert len(applies) == 1  # asset rows + types + links for every table in one batch
    assert len(queries) <= 5  # existing-URL probes, 200 URLs each
    assert len(ml.catalog.query(ml.domain_schema, "Model_Execution", {"Execution": exe.execution_rid})) == 1000


def test_manual_nesting_and_listing(ml, workflow):
    parent = ml.create_execution(ExecutionConfiguration(workflow=workflow, description="Cross-validation (3 folds)"))
    parent.execution_start()
    children = []
    for fold in (2, 0, 1):
        with ml.create_execution(ExecutionConfiguration(workflow=workflow, description=f"Fold {fold}")) as child:
            parent.add_nested_execution(child, sequence=fold)
            children.append(child)
    with ml.create_execution(ExecutionConfiguration(workflow=workflow, description="grandchild")) as grandchild:
        children[0].add_nested_execution(grandchild, sequence=0)
    parent.execution_stop()
    parent.upload_execution_outputs()
    direct = parent.list_nested_executions()
    assert [c.description for c in direct] == ["Fold 0", "Fold 1", "Fold 2"]
    assert all(c.status is Status.completed for c in direct)
    everything = parent.list_nested_executions(recurse=True)
    assert [c.description for c in everything] == ["Fold 0", "Fold 1", "Fold 2", "grandchild"]
    assert [p.rid for p in grandchild.list_parent_executions()] == [children[0].execution_rid]
    restored = ml.restore_execution(direct[0].execution_rid)
    assert restored.execution_rid == direct[0].execution_rid
    with pytest.raises(DerivaMLException, match="itself"):
        parent.add_nested_execution(parent)
    with pytest.raises(DerivaMLException, match="cycle"):
        grandchild.add_nested_execution(parent)


def test_restore_continues_an_execution_in_a_new_process_state(backend, ml, workflow):
    with ml.create_execution(ExecutionConfiguration(workflow=workflow, description="first")) as exe:
        exe.asset_file_path("Model", "a.pt").write_bytes(b"a")
    rid = exe.execution_rid
    ml2 = backend()
    again = ml2.restore_execution(rid)
    assert again.status is Status.completed and again.configuration.description == "first"
    again.asset_file_path("Model", "continued_model.pt").write_bytes(b"b")
    again.upload_execution_outputs()
    names = sorted(r["Filename"] for r in ml2.catalog.query(ml2.domain_schema, "Model"))
    assert names == ["a.pt", "continued_model.pt"]


def test_restore_reads_configuration_from_catalog_when_local_copy_is_gone(ml, workflow):
    import shutil

    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow, description="keep me"))
    shutil.rmtree(exe.working_dir)
    again = ml.restore_execution(exe.execution_rid)
    assert again.configuration.description == "keep me"
    assert again.workflow.rid == exe.workflow.rid


def test_failed_execution_can_be_retried(ml, workflow):
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow))
    with pytest.raises(ValueError), exe:
        raise ValueError("first try")
    with exe:
        pass
    assert ml.lookup_execution(exe.execution_rid).status is Status.completed


def test_dry_run_writes_nothing(ml, workflow):
    before = len(rows(ml, "Execution"))
    with ml.create_execution(ExecutionConfiguration(workflow=workflow), dry_run=True) as exe:
        exe.asset_file_path("Model", "m.pt").write_bytes(b"m")
    assert exe.upload_execution_outputs() == {}
    assert len(rows(ml, "Execution")) == before
    assert len(rows(ml, "Workflow")) == 0


def test_environment_snapshot_content(ml, workflow):
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow))
    snap = json.loads(next((exe.working_dir / "metadata").glob("environment_snapshot_*.txt")).read_text())
    assert snap["python"]["version"].startswith("3.")
    assert any(p["name"].lower() == "attrs" for p in snap["packages"])
    assert "available" in snap["gpu"]
    assert snap["os"]["system"]
    assert snap["environment"]["PATH"] == os.environ["PATH"]


def test_create_execution_records_created_then_initializing_then_pending(ml, workflow):
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow))
    assert [(c.from_status, c.to_status) for c in exe.record.history] == [
        (Status.created, Status.initializing),
        (Status.initializing, Status.pending),
    ]
    assert ml.lookup_execution(exe.execution_rid).status is Status.pending


def test_cycle_check_sees_links_made_by_another_handle(backend, ml, workflow):
    """A cycle closed through a link another process made is refused (nothing read earlier is trusted)."""
    p, b, q = (ml.create_execution(ExecutionConfiguration(workflow=workflow, description=d)) for d in "pbq")
    p.add_nested_execution(b)  # this handle has read p's ancestors: none
    other = backend()
    other.restore_execution(q.execution_rid).add_nested_execution(p.execution_rid)  # q -> p, elsewhere
    with pytest.raises(DerivaMLException, match="cycle"):
        p.add_nested_execution(q)  # p -> q would close q -> p -> q
