"""Helpers for testing pipelines built on deriva_ml: a throwaway embedded catalog and record factories.

>>> from deriva_ml.testing import temp_catalog
>>> with temp_catalog() as ml:                       # doctest: +SKIP
...     wf = ml.create_workflow("t", "Training", url="https://x/y.py", checksum="abc")

Everything here uses the real embedded catalog and local object store in a temporary directory: no
server, no network, nothing left behind. A new embedded catalog is a copy of one built once per process
(:func:`new_embedded_catalog`): the same file ``open_local_catalog`` makes, without rebuilding the deriva-ml
schema and its seeded terms for every test.
"""

from __future__ import annotations

import atexit
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from deriva_ml._ml import DerivaML
from deriva_ml.core.effects import Batch, Insert
from deriva_ml.core.records import ExecutionConfiguration, Workflow
from deriva_ml.core.schema_defs import ColumnDef

_template: Path | None = None
_template_lock = threading.Lock()


def _catalog_template() -> Path:
    """A closed, checkpointed embedded catalog with the deriva-ml schema and seeded terms (built once per process)."""
    global _template
    with _template_lock:
        if _template is None or not _template.is_file():
            from deriva_ml.catalog.sqlite import open_local_catalog

            root = Path(tempfile.mkdtemp(prefix="deriva-ml-template-"))
            atexit.register(shutil.rmtree, root, True)
            catalog = open_local_catalog("template", root)
            path = Path(catalog.path)
            catalog.close()
            # fold any write-ahead log into the file itself: the copy must be the whole catalog
            conn = sqlite3.connect(str(path))
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.close()
            _template = path
        return _template


def new_embedded_catalog(home: Path | str, name: str = "test") -> Path:
    """Put a new embedded catalog at ``<home>/catalogs/<name>/catalog.sqlite``; returns its path.

    The file is a copy of a catalog ``open_local_catalog`` built once in this process (the deriva-ml schema
    and its seeded terms), so ``DerivaML("local", name, home=home)`` then opens it instead of creating the
    schema again. An existing catalog is left as it is.
    """
    dest = Path(home) / "catalogs" / name / "catalog.sqlite"
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_catalog_template(), dest)
    return dest


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
    new_embedded_catalog(home, name)
    ml = DerivaML("local", name, home=home, **kwargs)  # type: ignore[arg-type]
    try:
        if domain:
            add_domain_schema(ml)
        yield ml
    finally:
        ml.close()
        shutil.rmtree(home, ignore_errors=True)
