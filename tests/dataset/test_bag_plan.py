"""The bag plan's pure decisions, table-driven: feature tables, which foreign keys a bag follows, fetch
entries, the plan's metadata (clock passed in), dataset info, CSV values, and denormalisation joins."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from deriva_ml.catalog.schema import asset_table, association_table, plain_table, vocabulary_table
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.errors import ValidationError
from deriva_ml.core.records import DatasetVersion
from deriva_ml.core.rid import RID
from deriva_ml.core.schema_defs import CatalogModel, ColumnDef, TableDef
from deriva_ml.dataset._bag_analysis import apply_selector, feature_name_of, plan_joins, select_majority_vote
from deriva_ml.dataset._bag_plan import (
    FeatureRead,
    Hop,
    csv_value,
    datasets_info,
    decode_value,
    feature_tables,
    feature_target_column,
    fetch_entry,
    hop_keys,
    may_follow,
    outbound_hops,
    plan_bag,
)
from deriva_ml.dataset._plans import member_associations, new_member_association

ML = {t.name: t for t in __import__("deriva_ml.catalog.schema", fromlist=["ML_TABLES"]).ML_TABLES}
SPECIES = vocabulary_table("t", "Species")
DIAGNOSIS = vocabulary_table("t", "Diagnosis")
SUBJECT = plain_table("t", "Subject", [ColumnDef("Name")], references={"Species": SPECIES})
IMAGE, IMAGE_TYPE, IMAGE_EXE = asset_table("t", "Image", referenced_tables=[SUBJECT])
NOTE = plain_table("t", "Note", [ColumnDef("Text")], references={"Image": IMAGE, "Workflow": ML["Workflow"]})
#: a hand-made feature table of the reference's shape: target, Feature_Name, Execution, a term and a value
QUALITY = association_table(
    "t",
    [("Image", IMAGE), ("Execution", ML["Execution"]), ("Feature_Name", ML["Feature_Name"])],
    [ColumnDef("Confidence", "float8")],
    metadata_references=[("Diagnosis", DIAGNOSIS, True)],
    name="Execution_Image_Quality",
)
#: same columns but its foreign key targets Subject, not Image
SUBJECT_FEATURE = association_table(
    "t",
    [("Subject", SUBJECT), ("Execution", ML["Execution"]), ("Feature_Name", ML["Feature_Name"])],
    name="Execution_Subject_Age",
)
#: references Image and Execution but has no Feature_Name: a provenance link, not a feature
NO_NAME = association_table("t", [("Image", IMAGE), ("Execution", ML["Execution"])], name="Image_Run")
DATASET_IMAGE = new_member_association(IMAGE, ML["Dataset"])
MODEL = CatalogModel(
    (
        *ML.values(),
        SPECIES,
        DIAGNOSIS,
        SUBJECT,
        IMAGE,
        IMAGE_TYPE,
        IMAGE_EXE,
        NOTE,
        QUALITY,
        SUBJECT_FEATURE,
        NO_NAME,
        DATASET_IMAGE,
    )
)


@pytest.mark.parametrize(
    ("table", "target", "expected"),
    [
        (QUALITY, IMAGE, "Image"),
        (QUALITY, SUBJECT, None),  # not a feature of Subject
        (SUBJECT_FEATURE, SUBJECT, "Subject"),
        (SUBJECT_FEATURE, IMAGE, None),
        (NO_NAME, IMAGE, None),  # no Feature_Name column
        (DATASET_IMAGE, IMAGE, None),  # a membership link
        (IMAGE_EXE, IMAGE, None),  # the asset's execution link (Asset_Role, no Feature_Name)
        (NOTE, IMAGE, None),
    ],
)
def test_feature_table_predicate(table: TableDef, target: TableDef, expected: str | None) -> None:
    assert feature_target_column(table, target) == expected


def test_feature_tables_of_member_tables() -> None:
    assert feature_tables(MODEL, [IMAGE]) == (FeatureRead(("t", "Execution_Image_Quality"), ("t", "Image"), "Image"),)
    assert [f.table[1] for f in feature_tables(MODEL, [IMAGE, SUBJECT])] == [
        "Execution_Image_Quality",
        "Execution_Subject_Age",
    ]
    assert feature_tables(MODEL, [SPECIES]) == ()


@pytest.mark.parametrize(
    ("target", "followed"),
    [
        (SUBJECT, True),  # domain table
        (SPECIES, True),  # domain vocabulary
        (ML["Feature_Name"], True),  # deriva-ml vocabulary
        (ML["Dataset_Type"], True),
        (ML["Execution"], True),  # who made a feature value or a version
        (ML["Workflow"], False),  # no further into deriva-ml's own tables
        (ML["Dataset"], False),
        (ML["Dataset_Version"], False),
        (plain_table("public", "ERMrest_Client", [ColumnDef("ID")]), False),
    ],
)
def test_which_foreign_keys_a_bag_follows(target: TableDef, followed: bool) -> None:
    assert may_follow(target) is followed


@pytest.mark.parametrize(
    ("table", "hops"),
    [
        (IMAGE, [Hop(("t", "Image"), "Subject", ("t", "Subject"), "RID")]),
        (SUBJECT, [Hop(("t", "Subject"), "Species", ("t", "Species"), "Name")]),
        (NOTE, [Hop(("t", "Note"), "Image", ("t", "Image"), "RID")]),  # not Workflow
        (
            QUALITY,
            [
                Hop(("t", "Execution_Image_Quality"), "Diagnosis", ("t", "Diagnosis"), "Name"),
                Hop(("t", "Execution_Image_Quality"), "Execution", (ML_SCHEMA, "Execution"), "RID"),
                Hop(("t", "Execution_Image_Quality"), "Feature_Name", (ML_SCHEMA, "Feature_Name"), "Name"),
                Hop(("t", "Execution_Image_Quality"), "Image", ("t", "Image"), "RID"),
            ],
        ),
        (DATASET_IMAGE, [Hop(("t", "Dataset_Image"), "Image", ("t", "Image"), "RID")]),  # never into Dataset
        (ML["Execution"], []),  # Workflow is not followed
        (SPECIES, []),
    ],
)
def test_outbound_hops(table: TableDef, hops: list[Hop]) -> None:
    assert list(outbound_hops(MODEL, table)) == hops


def test_hop_keys_skip_empty_values() -> None:
    hop = Hop(("t", "Image"), "Subject", ("t", "Subject"), "RID")
    rows = [{"Subject": "1-A"}, {"Subject": None}, {"Subject": ""}, {"Subject": "1-A"}, {"Subject": "1-B"}, {}]
    assert hop_keys(rows, hop) == {"1-A", "1-B"}


@pytest.mark.parametrize(
    ("table", "row", "expected_path"),
    [
        (
            IMAGE,
            {"RID": "1-A", "URL": "/hatrac/x", "MD5": "AB", "Length": 3, "Filename": "a.png"},
            "data/assets/Image/1-A/a.png",
        ),
        (
            IMAGE,
            {"RID": "1-A", "URL": "/hatrac/x", "MD5": "ab", "Length": "3", "Filename": "../../etc/passwd"},
            "data/assets/Image/1-A/passwd",
        ),
        (
            IMAGE,
            {"RID": "1-A", "URL": "/hatrac/x", "MD5": "ab", "Length": 0, "Filename": None},
            "data/assets/Image/1-A/file",
        ),
        (IMAGE, {"RID": "1-A", "URL": "/hatrac/x", "MD5": None, "Length": 3}, None),
        (IMAGE, {"RID": "1-A", "URL": None, "MD5": "ab", "Length": 3}, None),
        (IMAGE, {"RID": "1-A", "URL": "/hatrac/x", "MD5": "ab", "Length": None}, None),
        (SUBJECT, {"RID": "1-A", "URL": "/hatrac/x", "MD5": "ab", "Length": 3}, None),  # not an asset table
    ],
)
def test_fetch_entries(table: TableDef, row: dict, expected_path: str | None) -> None:
    e = fetch_entry(table, row)
    if expected_path is None:
        assert e is None
    else:
        assert e is not None and e.path == expected_path and e.md5 == "ab" and e.url == "/hatrac/x"
        assert isinstance(e.length, int)


def _plan(**kw):  # type: ignore[no-untyped-def]
    args = dict(
        dataset_rid=RID("1-D"),
        version=DatasetVersion(0, 3, 0),
        version_row={"RID": "1-V", "Snapshot": "2T-X"},
        datasets=[RID("1-D"), RID("1-C")],
        edges=[(RID("1-D"), RID("1-C"))],
        associations=member_associations(MODEL),
        materialize=True,
        now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        host="example.org",
        catalog_id="7",
    )
    args.update(kw)
    return plan_bag(MODEL, **args)


def test_plan_bag_takes_its_clock_and_names_what_to_read() -> None:
    plan = _plan()
    assert plan.created == "2026-01-02T03:04:05+00:00"  # from the clock passed in
    assert plan.name == "Dataset_1-D_0.3.0" and _plan(materialize=False).name == "Dataset_1-D_0.3.0_metadata"
    assert plan.snapshot == "2T-X" and plan.version_rid == "1-V"
    assert [(m.association[1], m.member[1]) for m in plan.members] == [
        ("Dataset_Dataset", "Dataset"),
        ("Dataset_File", "File"),
        ("Dataset_Image", "Image"),
    ]
    assert [f.table[1] for f in plan.features] == ["Execution_Image_Quality"]  # Image is a member table
    assert plan.hops[("t", "Subject")] == (Hop(("t", "Subject"), "Species", ("t", "Species"), "Name"),)
    assert plan.metadata == {
        "External-Description": "deriva-ml dataset 1-D version 0.3.0",
        "External-Identifier": "example.org/7/1-D@0.3.0",
        "Dataset-RID": "1-D",
        "Dataset-Version": "0.3.0",
        "Catalog-Snapshot": "2T-X",
    }
    assert _plan(version_row={"RID": "1-V"}).metadata["Catalog-Snapshot"] == ""


def test_datasets_info() -> None:
    plan = _plan()
    info = datasets_info(
        plan,
        [{"RID": "1-D", "Description": "root"}, {"RID": "1-C", "Description": None}, {"RID": "1-X"}],
        [
            {"Dataset": "1-D", "Dataset_Type": "b"},
            {"Dataset": "1-D", "Dataset_Type": "a"},
            {"Dataset": "1-X", "Dataset_Type": "z"},
        ],
        [{"Dataset": "1-C", "Version": "0.1.0", "RID": "1"}, {"Dataset": "1-C", "Version": "0.2.0", "RID": "2"}],
    )
    assert info == {
        "1-D": {"description": "root", "dataset_types": ["a", "b"], "version": "0.3.0", "children": ["1-C"]},
        "1-C": {"description": "", "dataset_types": [], "version": "0.2.0", "children": []},
    }


@pytest.mark.parametrize(
    ("value", "col_type", "cell"),
    [
        (None, "text", ""),
        (True, "boolean", "true"),
        (False, "boolean", "false"),
        (3, "int4", "3"),
        (2.5, "float8", "2.5"),
        (["a", "b"], "text[]", '["a", "b"]'),
        ({"k": 1}, "jsonb", '{"k": 1}'),
        ('x,y\n"z"', "text", 'x,y\n"z"'),
    ],
)
def test_csv_values_round_trip(value: object, col_type: str, cell: str) -> None:
    assert csv_value(value) == cell
    assert decode_value(cell, col_type) == value


@pytest.mark.parametrize(
    ("include", "root", "joins"),
    [
        (["Image", "Subject"], "Image", [("Image", "Subject", "Subject")]),
        (
            ["Subject", "Image", "Species"],
            "Image",
            [("Image", "Subject", "Subject"), ("Subject", "Species", "Species")],
        ),
        (["Species", "Subject"], "Subject", [("Subject", "Species", "Species")]),
        (
            ["Execution_Image_Quality", "Image", "Diagnosis"],
            "Execution_Image_Quality",
            [("Execution_Image_Quality", "Image", "Image"), ("Execution_Image_Quality", "Diagnosis", "Diagnosis")],
        ),
        (["Image"], "Image", []),
    ],
)
def test_denormalize_joins(include: list[str], root: str, joins: list[tuple[str, str, str]]) -> None:
    tables = [MODEL.find(n)[0] for n in include]
    got_root, got = plan_joins(MODEL, tables)
    assert got_root == root
    assert [(j.source, j.column, j.target) for j in got] == joins


def test_denormalize_refuses_unlinked_tables() -> None:
    with pytest.raises(ValidationError, match=r"\['Diagnosis'\] cannot be joined"):
        plan_joins(MODEL, [IMAGE, SUBJECT, DIAGNOSIS])


def test_feature_names_and_majority_vote() -> None:
    assert feature_name_of("Execution_Image_Quality", "Image") == "Quality"
    assert feature_name_of("Image_Quality", "Image") == "Image_Quality"

    class R:
        def __init__(self, rid: str, image: str, label: str, rct: str) -> None:
            self.RID, self.Image, self.Diagnosis, self.RCT = rid, image, label, rct

    rows = [
        R("1", "a", "good", "t1"),
        R("2", "a", "bad", "t2"),
        R("3", "a", "good", "t3"),
        R("4", "b", "bad", "t1"),
        R("5", "b", "good", "t2"),
    ]
    picked = apply_selector(rows, lambda r: r.Image, select_majority_vote("Diagnosis"))
    assert [(r.Image, r.Diagnosis, r.RID) for r in picked] == [("a", "good", "3"), ("b", "good", "5")]  # tie: newest
    assert len(apply_selector(rows, lambda r: r.Image, None)) == 5
