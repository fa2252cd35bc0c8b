"""The issue's worked example, on every backend: an execution reads a bag, "trains" (deterministically), writes a
model asset and per-image prediction features that reference the model asset; a second execution reads them
back with ``list_feature_values(..., selector=select_majority_vote())``.

Three training runs (seeds 0, 1, 2) predict a diagnosis per image from the image's bytes; seeds 0 and 1 agree
and seed 2 differs, so the majority is known without re-implementing the selector. A new version of the
dataset then holds the predictions, and its bag lays the images out by majority label (``restructure_assets``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from deriva_ml import DerivaML
from deriva_ml.core.schema_defs import ColumnDef
from deriva_ml.dataset.aux_classes import DatasetSpec
from deriva_ml.execution import ExecutionConfiguration
from deriva_ml.feature import select_majority_vote

CLASSES = ("Normal", "Glaucoma", "Cataract")


def predict(content: bytes, seed: int) -> tuple[str, float]:
    h = hashlib.md5(content).digest()[0]
    shift = 1 if seed == 2 else 0  # seed 2 disagrees with seeds 0 and 1 on every image
    return CLASSES[(h + shift) % 3], round(0.5 + (h % 50) / 100, 2)


def train(contents: list[bytes], seed: int) -> dict:
    return {"seed": seed, "n": len(contents), "digest": hashlib.md5(b"".join(sorted(contents))).hexdigest()}


def test_worked_example(ml: DerivaML) -> None:
    # ingest: 9 images as outputs of an ingest execution, gathered in a dataset
    ingest_wf = ml.create_workflow("ingest", "Ingest", url="https://example.org/ingest.py", checksum="i1")
    contents = {f"eye-{i}.png": f"pixels of eye {i} ".encode() * (i + 3) for i in range(9)}
    with ml.create_execution(ExecutionConfiguration(workflow=ingest_wf)) as exe:
        for name, data in contents.items():
            exe.asset_file_path("Image", name).write_bytes(data)
    images = {a.filename: a.rid for a in exe.upload_execution_outputs()[f"{ml.domain_schema}/Image"]}
    dataset = ml.create_dataset(dataset_types=["Training"], description="eyes")
    dataset.add_dataset_members(list(images.values()))
    ml.create_feature(
        "Image",
        "Prediction",
        terms=["Diagnosis"],
        assets=["Model"],
        metadata=[ColumnDef("Confidence", "float4")],
        comment="a model's predicted diagnosis",
    )

    # three training runs: read the bag, train, write the model and a prediction per image referencing it
    train_wf = ml.create_workflow("train", "Training", url="https://example.org/train.py", checksum="t1")
    models: dict[int, str] = {}
    for seed in (0, 1, 2):
        config = ExecutionConfiguration(
            workflow=train_wf, datasets=[DatasetSpec(rid=dataset.dataset_rid)], description=f"seed {seed}"
        )
        with ml.create_execution(config) as exe:
            bag = exe.download_dataset_bag(DatasetSpec(rid=dataset.dataset_rid))
            members = bag.list_dataset_members()["Image"]
            assert sorted(m["RID"] for m in members) == sorted(images.values())
            data = {m["RID"]: bag.asset_path("Image", m["RID"]).read_bytes() for m in members}
            model_path = exe.asset_file_path("Model", f"model-{seed}.json")
            model_path.write_text(json.dumps(train(list(data.values()), seed)))
            Prediction = ml.feature_record_class("Image", "Prediction")
            records = []
            for rid, content in data.items():
                diagnosis, confidence = predict(content, seed)
                records.append(Prediction(Image=rid, Diagnosis=diagnosis, Model=model_path, Confidence=confidence))
            assert exe.add_features(records) == len(images)
        up = exe.upload_execution_outputs()
        models[seed] = up[f"{ml.domain_schema}/Model"][0].rid

    # a second execution reads the predictions back and takes the majority per image
    eval_wf = ml.create_workflow("evaluate", "Evaluation", url="https://example.org/eval.py", checksum="e1")
    with ml.create_execution(ExecutionConfiguration(workflow=eval_wf)) as exe:
        assert len(ml.list_feature_values("Image", "Prediction")) == 3 * len(images)
        voted = ml.list_feature_values("Image", "Prediction", selector=select_majority_vote())
        report = exe.asset_file_path("Execution_Asset", "consensus.json")
        report.write_text(json.dumps({v.Image: v.Diagnosis for v in voted}, sort_keys=True))
    exe.upload_execution_outputs()

    by_rid = {rid: contents[name] for name, rid in images.items()}
    assert {v.Image: v.Diagnosis for v in voted} == {rid: predict(c, 0)[0] for rid, c in by_rid.items()}
    # the majority's newest value: seed 1's, referencing seed 1's model asset
    assert {v.Model for v in voted} == {models[1]}
    model_rows = ml.catalog.query(ml.domain_schema, "Model", {"RID": list(models.values())})
    assert sorted(r["Filename"] for r in model_rows) == ["model-0.json", "model-1.json", "model-2.json"]

    # a new version of the dataset holds the predictions: its bag lays the images out by majority label
    ml.increment_dataset_version(dataset.dataset_rid, "minor", "with predictions")
    spec = DatasetSpec(rid=dataset.dataset_rid, version=ml.dataset_version(dataset.dataset_rid))
    with ml.create_execution(ExecutionConfiguration(workflow=eval_wf, datasets=[spec])) as exe:
        bag = exe.download_dataset_bag(spec)
        out = bag.restructure_assets(
            exe.working_dir / "by-label", "Image", group_by=["Prediction"], selector=select_majority_vote()
        )
    layout = {p.parent.name: set() for p in Path(out).rglob("*.png")}
    for p in Path(out).rglob("*.png"):
        layout[p.parent.name].add(p.name)
    expected: dict[str, set[str]] = {}
    for name, content in contents.items():
        expected.setdefault(predict(content, 0)[0], set()).add(name)
    assert layout == expected  # one folder per majority label, each image once
    assert all(p.read_bytes() == contents[p.name] for p in Path(out).rglob("*.png"))
