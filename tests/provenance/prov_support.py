"""Helpers of the provenance tests: the same run recorded the same way on any backend.

``record_run`` reads an input dataset (at a version) and an input asset, writes outputs in two asset tables
(one with a reference to a Subject), an output dataset and feature values in a feature-shaped table, with
configuration choices and arguments; ``record_sweep`` adds a parent with children. ``token`` makes the bytes
unique (live Hatrac names cannot be reused).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deriva_ml import DerivaML
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.effects import Batch, Insert
from deriva_ml.core.schema_defs import ColumnDef
from deriva_ml.execution import ExecutionConfiguration
from deriva_ml.testing import add_domain_schema, add_subjects, make_workflow


def add_feature_table(ml: DerivaML) -> None:
    """A table with the feature shape (Execution, Feature_Name, a target reference, a value)."""
    from deriva_ml.catalog.schema import plain_table

    model = ml.model()
    dom = ml.domain_schema or ""
    if model.table(dom, "Execution_Subject_Quality") is not None:
        return
    t = plain_table(
        dom,
        "Execution_Subject_Quality",
        [ColumnDef("Quality", "text")],
        references={
            "Execution": model.table(ML_SCHEMA, "Execution"),  # type: ignore[dict-item]
            "Feature_Name": model.table(ML_SCHEMA, "Feature_Name"),  # type: ignore[dict-item]
            "Subject": model.table(dom, "Subject"),  # type: ignore[dict-item]
        },
    )
    ml.catalog.create_tables([t])
    ml.add_term("Feature_Name", "Quality", "image quality")


def setup_domain(ml: DerivaML) -> None:
    add_domain_schema(ml)
    add_feature_table(ml)


def record_inputs(ml: DerivaML, token: str) -> dict[str, Any]:
    """An input asset (a Model uploaded by a setup run) and a dataset at version 0.2.0 with one Subject."""
    wf = make_workflow("setup")
    with ml.create_execution(ExecutionConfiguration(workflow=wf, description="setup")) as exe:
        exe.asset_file_path("Model", "weights.pt").write_bytes(f"weights {token}".encode())
    weights = exe.upload_execution_outputs()[f"{ml.domain_schema}/Model"][0].rid
    (subject,) = add_subjects(ml, [f"subject {token}"])
    ds = ml.create_dataset(["Training"], description=f"training set {token}")
    ml.add_dataset_members(ds.dataset_rid, {"Subject": [subject]})
    ml.increment_dataset_version(ds.dataset_rid, "minor", "with subject")
    return {"weights": weights, "subject": subject, "dataset": ds.dataset_rid}


def record_run(
    ml: DerivaML,
    token: str,
    inputs: dict[str, Any],
    *,
    n_outputs: int = 2,
    seed: int = 1,
    description: str = "the run",
) -> str:
    """The run: reads the dataset and the asset, writes outputs, an output dataset and feature values."""
    from deriva_ml.asset.aux_classes import AssetSpec
    from deriva_ml.dataset.aux_classes import DatasetSpec

    cfg = ExecutionConfiguration(
        workflow=make_workflow("train"),
        description=description,
        datasets=[DatasetSpec(rid=inputs["dataset"], version="0.2.0", materialize=False)],
        assets=[AssetSpec(rid=inputs["weights"])],
        argv=("train.py", f"seed={seed}", "model=small"),
        config_choices={"model": "small", "data": "tiny"},
    )
    with ml.create_execution(cfg) as exe:
        exe.asset_file_path("Model", "model.tar.gz").write_bytes(f"model {token} {seed}".encode())
        for i in range(n_outputs - 1):
            exe.asset_file_path("Image", f"mask {i}.png", metadata={"Subject": inputs["subject"]}).write_bytes(
                f"mask {token} {i}".encode()
            )
        exe.create_dataset(f"predictions {token}", ["Labeled"])
    exe.upload_execution_outputs()
    ml.catalog.apply(
        Batch(
            [
                Insert(
                    ml.domain_schema or "",
                    "Execution_Subject_Quality",
                    [
                        {
                            "Execution": exe.execution_rid,
                            "Feature_Name": "Quality",
                            "Subject": inputs["subject"],
                            "Quality": f"good {seed}",
                        }
                    ],
                )
            ]
        )
    )
    return exe.execution_rid


def record_sweep(ml: DerivaML, token: str, inputs: dict[str, Any], seeds: tuple[int, ...] = (1, 2)) -> str:
    """A sweep parent with one child per seed (sequence = position)."""
    with ml.create_execution(
        ExecutionConfiguration(workflow=make_workflow("sweep"), description="sweep", argv=("sweep.py", "-m"))
    ) as parent:
        pass
    for i, seed in enumerate(seeds):
        child = record_run(ml, token, inputs, seed=seed, description=f"job {i}")
        parent.add_nested_execution(child, sequence=i)
    return parent.execution_rid


OpenML = Callable[[], DerivaML]
