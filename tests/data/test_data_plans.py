"""Pure plans and summaries of dataset management and files (no catalog): dicts in, effects out."""

from __future__ import annotations

import subprocess
import sys

import pytest

from deriva_ml.catalog.schema import ML_TABLES, asset_table, plain_table
from deriva_ml.core.effects import Delete, Insert, Update
from deriva_ml.core.rid import RID
from deriva_ml.core.schema_defs import CatalogModel, ColumnDef
from deriva_ml.data._assets import FileSpec, plan_add_files
from deriva_ml.dataset._manage import plan_delete_datasets, plan_remove_members, summarize_bag
from deriva_ml.dataset._plans import member_associations, new_member_association

DATASET = next(t for t in ML_TABLES if t.name == "Dataset")
SUBJECT = plain_table("t", "Subject", [ColumnDef("Name", "text")])
IMAGE = asset_table("t", "Image")[0]
MODEL = CatalogModel(
    (*ML_TABLES, SUBJECT, IMAGE, new_member_association(SUBJECT, DATASET), new_member_association(IMAGE, DATASET))
)


def test_plan_delete_datasets_marks_deleted() -> None:
    (u,) = plan_delete_datasets([RID("1-A"), RID("1-B")]).effects
    assert isinstance(u, Update) and u.table == "Dataset"
    assert list(u.rows) == [{"RID": "1-A", "Deleted": True}, {"RID": "1-B", "Deleted": True}]
    assert plan_delete_datasets([]).effects == ()


def test_plan_remove_members_one_delete_per_table() -> None:
    assoc = member_associations(MODEL)
    batch = plan_remove_members(
        RID("1-D"), {("t", "Subject"): [RID("1-S"), RID("1-S"), RID("1-T")], ("t", "Image"): []}, assoc
    )
    (d,) = batch.effects
    assert isinstance(d, Delete)
    assert (d.table, d.column, d.values, dict(d.where)) == (
        "Dataset_Subject",
        "Subject",
        ("1-S", "1-T"),
        {"Dataset": "1-D"},
    )


@pytest.mark.parametrize(
    ("members", "rows", "nbytes", "total"),
    [
        ({}, {}, 0, 0),
        ({"Subject": [{"RID": "1"}, {"RID": "1"}, {"RID": "2"}]}, {"Subject": 2}, 0, 2),
        (
            {"Image": [{"RID": "3", "Length": 1000}, {"RID": "4", "Length": None}], "Dataset": [{"RID": "9"}]},
            {"Image": 2, "Dataset": 1},
            1000,
            3,
        ),
    ],
)
def test_summarize_bag(members: dict, rows: dict, nbytes: int, total: int) -> None:
    s = summarize_bag(members, MODEL)
    assert {k: v["row_count"] for k, v in s["tables"].items()} == rows
    assert s["total_asset_bytes"] == nbytes and s["total_rows"] == total
    if "Image" in rows:
        assert s["tables"]["Image"]["is_asset"] and s["total_asset_size"] == "1000 B"


def test_plan_add_files_skips_existing_urls() -> None:
    specs = [FileSpec("file:///data/a.csv", "0" * 32, 3), FileSpec("https://x.org/b/c.bin", "1" * 32, 4, "remote")]
    (ins,) = plan_add_files(specs, {}).effects
    assert isinstance(ins, Insert) and ins.on_conflict_skip
    assert [r["Filename"] for r in ins.rows] == ["a.csv", "c.bin"]
    assert ins.rows[1]["Description"] == "remote"


@pytest.mark.slow
def test_import_deriva_ml_loads_no_pandas_and_no_data_api() -> None:
    code = "import sys, deriva_ml; bad = [m for m in ('pandas', 'deriva_ml.data', 'numpy') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
