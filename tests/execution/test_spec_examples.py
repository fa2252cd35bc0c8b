"""The spec's code blocks, "Creating an Execution Configuration" to "Complete Example", run as written.

Adapted only in the host (the ``ml`` fixture: embedded, or ERMrest+Hatrac on 127.0.0.1), the RIDs (rows
made by ``catalog`` below stand in for "1-ABC", "2-GHI"...), and the domain schema (Subject, Image, Model).
``torch.save`` is replaced by writing bytes; everything else is the spec's code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from deriva_ml.asset.aux_classes import AssetSpec
from deriva_ml.core.definitions import ML_SCHEMA, Status
from deriva_ml.dataset.aux_classes import DatasetSpec
from deriva_ml.execution import ExecutionConfiguration


@pytest.fixture
def catalog(ml):
    """Stand-ins for the spec's RIDs: two datasets of images and two model-weight assets."""
    wf = ml.create_workflow(name="setup", workflow_type="Preprocessing", url="https://x/setup.py", checksum="s")
    with ml.create_execution(ExecutionConfiguration(workflow=wf, description="make inputs")) as exe:
        for i in range(4):
            exe.asset_file_path("Image", f"img{i}.png", metadata={"Label": "a" if i % 2 else "b"}).write_bytes(
                f"image {i}".encode()
            )
        exe.asset_file_path("Model", "pretrained.pt").write_bytes(b"pretrained weights")
        exe.asset_file_path("Model", "embeddings.pt").write_bytes(b"embeddings")
    up = exe.upload_execution_outputs()
    images = [a.rid for a in up[f"{ml.domain_schema}/Image"]]
    models = {a.filename: a.rid for a in up[f"{ml.domain_schema}/Model"]}
    abc = ml.create_dataset(dataset_types=["Training"], description="ABC")
    abc.add_dataset_members(images[:2])
    deff = ml.create_dataset(dataset_types=["Training"], description="DEF", version="1.1.0")
    deff.add_dataset_members(images[2:])  # -> 1.2.0
    deff.add_dataset_members(images[:1])  # -> 1.3.0: version 1.2.0 must still mean the first two
    return {
        "1-ABC": abc.dataset_rid,
        "1-DEF": deff.dataset_rid,
        "2-GHI": models["pretrained.pt"],
        "2-JKL": models["embeddings.pt"],
        "images": images,
    }


def process_image(path):
    return Path(path).read_bytes()


def train_model(images):
    return {"n": len(images)}


def test_creating_an_execution_configuration_and_running_it(ml, catalog):
    R = catalog
    workflow = ml.create_workflow(
        name="ResNet50 Training",
        workflow_type="Training",
        description="Train ResNet50 on image classification task",
    )
    config = ExecutionConfiguration(
        workflow=workflow,
        description="Training run with augmented data",
        datasets=[
            DatasetSpec(rid=R["1-ABC"]),  # Use current version
            DatasetSpec(rid=R["1-DEF"], version="1.2.0"),  # Use specific version
        ],
        assets=[R["2-GHI"], R["2-JKL"]],  # Additional input asset RIDs
    )
    with ml.create_execution(config) as exe:
        print(f"Execution RID: {exe.execution_rid}")
        print(f"Working directory: {exe.working_dir}")
        bag = exe.download_dataset_bag(DatasetSpec(rid=R["1-ABC"]))
        images = bag.list_dataset_members()["Image"]
        for img in images:
            process_image(img["Filename"])
        model = train_model(images)
        model_path = exe.asset_file_path("Model", "best_model.pt")
        model_path.write_text(json.dumps(model))
        metrics_path = exe.asset_file_path("Execution_Metadata", "metrics.json")
        with open(metrics_path, "w") as f:
            json.dump({"accuracy": 0.95}, f)
    exe.upload_execution_outputs()

    rid = exe.execution_rid
    assert ml.lookup_execution(rid).status is Status.completed
    # Dataset_Execution: one row per input dataset, role Input
    links = ml.catalog.query(ML_SCHEMA, "Dataset_Execution", {"Execution": rid})
    assert {(x["Dataset"], x["Asset_Role"]) for x in links} == {(R["1-ABC"], "Input"), (R["1-DEF"], "Input")}
    # the pinned version reads the membership it had then
    pinned = exe.download_dataset_bag(DatasetSpec(rid=R["1-DEF"], version="1.2.0"))
    assert sorted(m["RID"] for m in pinned.list_dataset_members()["Image"]) == sorted(R["images"][2:])
    # input assets linked as Input, outputs as Output
    model_links = ml.catalog.query(ml.domain_schema, "Model_Execution", {"Execution": rid})
    roles = {(x["Model"], x["Asset_Role"]) for x in model_links}
    assert (R["2-GHI"], "Input") in roles and (R["2-JKL"], "Input") in roles
    assert sum(1 for _, role in roles if role == "Output") == 1
    # the four kinds of metadata file (Hydra_Config only under deriva-ml-run) + metrics.json
    meta_links = ml.catalog.query(ML_SCHEMA, "Execution_Metadata_Execution", {"Execution": rid})
    rows = ml.catalog.query(ML_SCHEMA, "Execution_Metadata", {"RID": [x["Execution_Metadata"] for x in meta_links]})
    names = {r["Filename"] for r in rows}
    assert {"configuration.json", "uv.lock", "metrics.json"} <= names
    assert any(n.startswith("environment_snapshot_") for n in names)
    cfg = json.loads((exe.working_dir / "metadata" / "configuration.json").read_text())
    versions = {d["rid"]: d["version"] for d in cfg["datasets"]}
    assert versions[R["1-DEF"]] == {"major": 1, "minor": 2, "patch": 0}
    assert versions[R["1-ABC"]] == {"major": 0, "minor": 2, "patch": 0}  # the resolved current version


def test_datasetspec_options(ml, catalog):
    R = catalog
    full = ml.download_dataset_bag(DatasetSpec(rid=R["1-ABC"], materialize=True))
    meta = ml.download_dataset_bag(DatasetSpec(rid=R["1-ABC"], materialize=False))
    assert all(Path(m["Filename"]).is_file() for m in full.list_dataset_members()["Image"])
    assert not any(p.is_file() for p in (Path(meta.path) / "data" / "assets").rglob("*"))
    old = ml.download_dataset_bag(DatasetSpec(rid=R["1-DEF"], version="1.2.0"))
    assert str(old.version) == "1.2.0"


def test_assetspec_and_asset_caching(ml, catalog):
    R = catalog
    workflow = ml.create_workflow(name="Inference", workflow_type="Inference", url="https://x/inf.py", checksum="i")
    config = ExecutionConfiguration(
        workflow=workflow,
        description="Inference with cached weights",
        datasets=[DatasetSpec(rid=R["1-ABC"])],
        assets=[
            AssetSpec(rid=R["2-GHI"], cache=True),  # Cached by MD5
            R["2-JKL"],  # Not cached (bare RID)
        ],
    )
    exe = ml.create_execution(config)
    cached, plain = exe.asset_paths["Model"]
    assert cached.is_symlink() and plain.is_file() and not plain.is_symlink()
    target = Path(os.readlink(cached))
    assert target.parent.parent == ml.cache_dir / "assets"
    assert target.parent.name.startswith(f"{R['2-GHI']}_")
    assert target.read_bytes() == b"pretrained weights"
    # a second execution reuses the cache: no new object-store read for the cached asset
    reads = []
    inner_get = ml.store.get

    def counting_get(url, dest, **kw):
        reads.append(url)
        return inner_get(url, dest, **kw)

    ml.store.get = counting_get
    exe2 = ml.create_execution(config)
    assert Path(os.readlink(exe2.asset_paths["Model"][0])) == target
    ghi_url = ml.catalog.query(ml.domain_schema, "Model", {"RID": R["2-GHI"]})[0]["URL"]
    assert ghi_url not in reads


def test_creating_output_datasets(ml, catalog):
    R = catalog
    workflow = ml.create_workflow(name="Augment", workflow_type="Training", url="https://x/aug.py", checksum="a")
    config = ExecutionConfiguration(workflow=workflow, description="augment", datasets=[DatasetSpec(rid=R["1-ABC"])])

    def process_data(_):
        return R["images"][:3]

    with ml.create_execution(config) as exe:
        processed_rids = process_data(None)
        output_dataset = exe.create_dataset(
            description="Augmented training images", dataset_types=["Training", "Augmented"]
        )
        output_dataset.add_dataset_members(processed_rids)
    exe.upload_execution_outputs()
    links = ml.catalog.query(ML_SCHEMA, "Dataset_Execution", {"Execution": exe.execution_rid})
    roles = {x["Dataset"]: x["Asset_Role"] for x in links}
    assert roles == {R["1-ABC"]: "Input", output_dataset.dataset_rid: "Output"}
    members = ml.list_dataset_members(output_dataset.dataset_rid)["Image"]
    assert sorted(m["RID"] for m in members) == sorted(processed_rids)


def test_manual_nesting_block(ml, catalog):
    R = catalog
    workflow = ml.create_workflow(name="CV", workflow_type="Training", url="https://x/cv.py", checksum="cv")
    fold_datasets = [R["1-ABC"], R["1-DEF"]]
    parent_config = ExecutionConfiguration(workflow=workflow, description="Cross-validation experiment (2 folds)")
    parent = ml.create_execution(parent_config)
    parent.execution_start()
    for fold in range(2):
        child_config = ExecutionConfiguration(
            workflow=workflow,
            description=f"Fold {fold}",
            datasets=[DatasetSpec(rid=fold_datasets[fold])],
        )
        with ml.create_execution(child_config) as child:
            parent.add_nested_execution(child, sequence=fold)
    parent.execution_stop()
    parent.upload_execution_outputs()
    children = parent.list_nested_executions()
    assert [f"[{c.status}] {c.description}" for c in children] == ["[Completed] Fold 0", "[Completed] Fold 1"]
    assert ml.restore_execution(children[0].execution_rid).execution_rid == children[0].execution_rid


def test_complete_example(ml, catalog):
    R = catalog
    workflow = ml.create_workflow(
        name="Image Classifier Training v3",
        workflow_type="Training",
        description="Train CNN classifier on medical images",
    )
    config = ExecutionConfiguration(
        workflow=workflow,
        description="Training with learning rate 0.001",
        datasets=[DatasetSpec(rid=R["1-ABC"])],
    )
    with ml.create_execution(config) as exe:
        bag = exe.download_dataset_bag(DatasetSpec(rid=R["1-ABC"]))
        train_loader = bag.list_dataset_members()["Image"]
        loss = 1.0
        for epoch in range(3):
            loss = loss / 2 + len(train_loader) * 0
            exe.update_status(Status.running, f"Epoch {epoch}: loss={loss:.4f}")
        model_path = exe.asset_file_path("Model", "classifier.pt")
        model_path.write_bytes(b"state dict")
        metrics_path = exe.asset_file_path("Execution_Metadata", "training_metrics.json")
        with open(metrics_path, "w") as f:
            json.dump({"final_loss": loss, "epochs": 3}, f)
    exe.upload_execution_outputs()
    print(f"Execution complete: {exe.execution_rid}")
    row = ml.catalog.query(ML_SCHEMA, "Execution", {"RID": exe.execution_rid})[0]
    assert row["Status"] == "Completed" and row["Duration"]
