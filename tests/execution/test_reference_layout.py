"""A catalog laid out like the reference package's (older variant) works unchanged.

Reference catalogs keep one workflow type in a ``Workflow.Workflow_Type`` column (no
``Workflow_Workflow_Type`` table) and have no ``Asset_Role`` on ``Dataset_Execution``.
"""

from __future__ import annotations

import attrs

from deriva_ml import DerivaML
from deriva_ml.catalog.schema import ML_TABLES, seed_batch
from deriva_ml.catalog.sqlite import SQLiteCatalog
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.plans import ml_layout
from deriva_ml.core.schema_defs import ColumnDef, ForeignKeyDef
from deriva_ml.execution import ExecutionConfiguration, Workflow
from deriva_ml.store.local import LocalObjectStore
from deriva_ml.testing import add_domain_schema


def reference_like_tables():
    out = []
    for t in ML_TABLES:
        if t.name == "Workflow_Workflow_Type":
            continue
        if t.name == "Workflow":
            t = attrs.evolve(
                t,
                columns=(*t.columns, ColumnDef("Workflow_Type", "text")),
                foreign_keys=(
                    *t.foreign_keys,
                    ForeignKeyDef(("Workflow_Type",), ML_SCHEMA, "Workflow_Type", ("Name",)),
                ),
            )
        if t.name == "Dataset_Execution":
            t = attrs.evolve(
                t,
                columns=tuple(c for c in t.columns if c.name != "Asset_Role"),
                foreign_keys=tuple(fk for fk in t.foreign_keys if fk.columns != ("Asset_Role",)),
            )
        out.append(t)
    return out


def test_reference_layout(tmp_path):
    cat = SQLiteCatalog(tmp_path / "ref.sqlite")
    cat.create_tables(reference_like_tables())
    cat.apply(seed_batch())
    ml = DerivaML(
        "ref.example.org",
        "1",
        catalog=cat,
        store=LocalObjectStore(tmp_path / "objects"),
        home=tmp_path,
        domain_schema="ref",
    )
    assert ml_layout(ml.model()).workflow_types == "column" and not ml.layout.dataset_role
    add_domain_schema(ml)
    rid = ml.add_workflow(Workflow(name="W", workflow_type="Training", url="https://x/w.py", checksum="c"))
    assert ml.catalog.query(ML_SCHEMA, "Workflow", {"RID": rid})[0]["Workflow_Type"] == "Training"
    wf = ml.lookup_workflow(rid)
    assert wf.workflow_type == ("Training",)
    wf.workflow_type = "Inference"
    assert ml.lookup_workflow(rid).workflow_type == ("Inference",)

    with ml.create_execution(ExecutionConfiguration(workflow=wf.record, description="make")) as exe:
        exe.asset_file_path("Image", "a.png").write_bytes(b"a")
        out = exe.create_dataset(description="made here", dataset_types=["Training"])
    images = [a.rid for a in exe.upload_execution_outputs()["ref/Image"]]
    out.add_dataset_members(images)
    from deriva_ml.dataset.aux_classes import DatasetSpec

    with ml.create_execution(
        ExecutionConfiguration(workflow=wf.record, datasets=[DatasetSpec(rid=out.dataset_rid)])
    ) as reader:
        assert reader.datasets[0].list_dataset_members()["Image"][0]["RID"] == images[0]
    links = ml.catalog.query(ML_SCHEMA, "Dataset_Execution", {"Dataset": out.dataset_rid})
    assert {x["Execution"] for x in links} == {exe.execution_rid, reader.execution_rid}
