"""Helpers for testing pipelines built on deriva_ml: a throwaway embedded catalog and record factories.

>>> from deriva_ml.testing import temp_catalog
>>> with temp_catalog() as ml:                       # doctest: +SKIP
...     wf = ml.create_workflow("t", "Training", url="https://x/y.py", checksum="abc")

Everything here uses the real embedded catalog and local object store in a temporary directory: no
server, no network, nothing left behind.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from deriva_ml._ml import DerivaML
from deriva_ml.core.effects import Batch, Insert
from deriva_ml.core.records import ExecutionConfiguration, Workflow
from deriva_ml.core.schema_defs import ColumnDef


def make_workflow(name: str = "test workflow", workflow_type: str = "Training", **kw: Any) -> Workflow:
    """A workflow with a fixed URL and checksum (no source detection)."""
    kw.setdefault("url", f"https://github.com/example/project/blob/0000000/{name.replace(' ', '_')}.py")
    kw.setdefault("checksum", f"{abs(hash(name)):040x}"[:40])
    return Workflow(name=name, workflow_type=workflow_type, **kw)


def make_configuration(workflow: Workflow | None = None, **kw: Any) -> ExecutionConfiguration:
    return ExecutionConfiguration(workflow=workflow or make_workflow(), **kw)


def add_domain_schema(ml: DerivaML) -> None:
    """The small domain schema the spec's examples assume: Subject, Image (asset) and Model (asset)."""
    model = ml.model()
    dom = ml.domain_schema
    if model.table(dom, "Subject") is None:
        ml.create_table("Subject", [ColumnDef("Name", "text")])
    if ml.model().table(dom, "Image") is None:
        ml.create_asset(
            "Image",
            [ColumnDef("Acquisition_Date", "date"), ColumnDef("Acquisition_Time", "text"), ColumnDef("Label", "text")],
            referenced_tables=["Subject"],
        )
    if ml.model().table(dom, "Model") is None:
        ml.create_asset("Model")
    for term in ("Segmentation_Mask", "Derived"):
        ml.add_term("Asset_Type", term, f"{term} images")
    for term in ("Training", "Augmented"):
        ml.add_term("Dataset_Type", term, f"{term} data")


def add_subjects(ml: DerivaML, names: list[str]) -> list[str]:
    labels = [f"s{i}" for i in range(len(names))]
    result = ml.catalog.apply(
        Batch([Insert(ml.domain_schema or "", "Subject", [{"Name": n} for n in names], labels=labels)])
    )
    return [result.rids[label] for label in labels]


@contextmanager
def temp_catalog(name: str = "test", *, domain: bool = True, **kwargs: Mapping[str, Any]) -> Iterator[DerivaML]:
    """A DerivaML on a fresh embedded catalog in a temporary home (removed afterwards)."""
    home = Path(tempfile.mkdtemp(prefix="deriva-ml-test-"))
    ml = DerivaML("local", name, home=home, **kwargs)  # type: ignore[arg-type]
    try:
        if domain:
            add_domain_schema(ml)
        yield ml
    finally:
        ml.close()
        shutil.rmtree(home, ignore_errors=True)
