"""Datasets on a real embedded catalog: create, members, nesting, versions, history."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from dataset_helpers import add_images, add_subjects

from deriva_ml import DatasetVersion, DerivaML, RIDNotFound, UnknownTerm
from deriva_ml.core.errors import NotFound, ValidationError
from deriva_ml.dataset import Dataset
from deriva_ml.dataset._datasets import list_dataset_parents


def rids(members: dict[str, list[dict]], table: str) -> list[str]:
    return [r["RID"] for r in members[table]]


def test_create_dataset_writes_row_types_and_first_version(ml: DerivaML) -> None:
    ds = ml.create_dataset(["Training", "Labeled"], "train set")
    assert isinstance(ds, Dataset)
    assert ds.current_version == DatasetVersion(0, 1, 0)
    assert ds.dataset_types == ("Training", "Labeled")
    row = ml.catalog.query("deriva-ml", "Dataset", {"RID": ds.dataset_rid})[0]
    vrow = ml.catalog.query("deriva-ml", "Dataset_Version", {"RID": row["Version"]})[0]
    assert vrow["Version"] == "0.1.0" and vrow["Dataset"] == ds.dataset_rid and vrow["Snapshot"]
    again = ml.lookup_dataset(ds.dataset_rid)
    assert again == ds
    assert again.dataset_types == ("Labeled", "Training")
    assert again.description == "train set"
    assert ml.dataset_version(ds.dataset_rid) == DatasetVersion(0, 1, 0)
    assert [d.dataset_rid for d in ml.find_datasets()] == [ds.dataset_rid]


def test_create_dataset_with_version_and_unknown_type(ml: DerivaML) -> None:
    ds = ml.create_dataset("Complete", "all", version="2.0.0")
    assert ml.dataset_version(ds.dataset_rid) == DatasetVersion(2, 0, 0)
    before = len(ml.find_datasets())
    with pytest.raises(UnknownTerm):
        ml.create_dataset(["NoSuchType"], "x")
    assert len(ml.find_datasets()) == before  # nothing written


def test_lookup_missing_dataset(ml: DerivaML) -> None:
    with pytest.raises(RIDNotFound):
        ml.lookup_dataset("1-ZZZZ")
    with pytest.raises(RIDNotFound):
        ml.dataset_version("1-ZZZZ")


def test_add_members_by_rid_list_creates_associations(ml: DerivaML, tmp_path: Path) -> None:
    subjects = add_subjects(ml, 3)
    images = add_images(ml, tmp_path, 2)
    ds = ml.create_dataset("Training", "d")
    v = ds.add_dataset_members(subjects + images)
    assert v == DatasetVersion(0, 2, 0) == ds.current_version
    model = ml.catalog.model()
    assoc = model.table("t", "Dataset_Image")
    assert assoc is not None and {"Dataset", "Image"} <= {c.name for c in assoc.columns}
    assert model.table("t", "Dataset_Subject") is not None
    members = ml.list_dataset_members(ds.dataset_rid)
    assert rids(members, "Subject") == sorted(subjects)
    assert rids(members, "Image") == sorted(images)
    assert members["Dataset"] == []
    assert members["Image"][0]["Filename"].startswith("img")


def test_add_members_dict_form_and_idempotence(ml: DerivaML) -> None:
    subjects = add_subjects(ml, 2)
    ds = ml.create_dataset("Training", "d")
    assert ml.add_dataset_members(ds.dataset_rid, {"Subject": subjects}) == DatasetVersion(0, 2, 0)
    # all already present: no new links, no new version
    assert ml.add_dataset_members(ds.dataset_rid, {"Subject": subjects}) == DatasetVersion(0, 2, 0)
    assert ml.add_dataset_members(ds.dataset_rid, subjects[:1]) == DatasetVersion(0, 2, 0)
    assert len(ml.dataset_history(ds.dataset_rid)) == 2
    assert rids(ml.list_dataset_members(ds.dataset_rid), "Subject") == sorted(subjects)


def test_many_members_resolved_per_table(ml: DerivaML, tmp_path: Path) -> None:
    # more RIDs than candidate tables: resolved by one query per table instead of one per RID
    subjects = add_subjects(ml, 30)
    images = add_images(ml, tmp_path, 3)
    ds = ml.create_dataset("Training", "d")
    calls = {"resolve": 0}
    real = ml.catalog.resolve_rid

    def counting(rid: str) -> tuple[str, str]:
        calls["resolve"] += 1
        return real(rid)  # type: ignore[arg-type]

    ml.catalog.resolve_rid = counting  # type: ignore[method-assign]
    ds.add_dataset_members(images + subjects)
    assert calls["resolve"] == 0
    members = ml.list_dataset_members(ds.dataset_rid, limit=5)
    assert len(members["Subject"]) == 5 and len(members["Image"]) == 3


def test_members_of_unknown_rid_or_forbidden_table(ml: DerivaML) -> None:
    ds = ml.create_dataset("Training", "d")
    with pytest.raises(RIDNotFound):
        ds.add_dataset_members(["1-ZZZZ"])
    wf_rid = ml.add_workflow(ml.create_workflow("w", "Training", url="https://x/y.py", checksum="abc"))
    with pytest.raises(ValidationError, match="cannot be dataset members"):
        ds.add_dataset_members([wf_rid])
    assert ml.dataset_version(ds.dataset_rid) == DatasetVersion(0, 1, 0)


def test_nested_datasets_children_parents_and_recurse(ml: DerivaML) -> None:
    s = add_subjects(ml, 4)
    parent = ml.create_dataset("Split", "parent")
    train = ml.create_dataset("Training", "train")
    test = ml.create_dataset("Testing", "test")
    train.add_dataset_members(s[:2])
    test.add_dataset_members(s[2:])
    parent.add_dataset_members([train.dataset_rid, test.dataset_rid])
    children = ml.list_dataset_children(parent.dataset_rid)
    assert {c.dataset_rid for c in children} == {train.dataset_rid, test.dataset_rid}
    assert [p.dataset_rid for p in list_dataset_parents(ml, train.dataset_rid)] == [parent.dataset_rid]
    direct = ml.list_dataset_members(parent.dataset_rid)
    assert rids(direct, "Subject") == []
    assert sorted(rids(direct, "Dataset")) == sorted([train.dataset_rid, test.dataset_rid])
    deep = ml.list_dataset_members(parent.dataset_rid, recurse=True)
    assert rids(deep, "Subject") == sorted(s)


def test_nesting_cycles_are_rejected(ml: DerivaML) -> None:
    a = ml.create_dataset("Split", "a")
    b = ml.create_dataset("Split", "b")
    c = ml.create_dataset("Split", "c")
    a.add_dataset_members([b.dataset_rid])
    b.add_dataset_members([c.dataset_rid])
    with pytest.raises(ValidationError, match="cycle"):
        c.add_dataset_members([a.dataset_rid])
    with pytest.raises(ValidationError, match="itself"):
        a.add_dataset_members([a.dataset_rid])
    assert ml.list_dataset_members(c.dataset_rid)["Dataset"] == []


def test_increment_version_and_history(ml: DerivaML) -> None:
    ds = ml.create_dataset("Training", "d")
    assert ml.increment_dataset_version(ds.dataset_rid, "patch", "fix") == DatasetVersion(0, 1, 1)
    assert ds.increment_dataset_version("major", "big") == DatasetVersion(1, 0, 0)
    assert ds.current_version == DatasetVersion(1, 0, 0)
    with pytest.raises(ValidationError):
        ds.increment_dataset_version("huge")
    history = ml.dataset_history(ds.dataset_rid)
    assert [str(h.dataset_version) for h in history] == ["0.1.0", "0.1.1", "1.0.0"]
    assert [h.description for h in history] == ["Created", "fix", "big"]
    snaps = [h.snapshot for h in history]
    assert all(snaps) and len(set(snaps)) == 3
    if ml.host_name == "local":  # embedded snapshots are batch counters
        assert [int(s) for s in snaps] == sorted(int(s) for s in snaps)
    row = ml.catalog.query("deriva-ml", "Dataset", {"RID": ds.dataset_rid})[0]
    assert row["Version"] == history[-1].version_rid


def test_versions_are_reproducible(ml: DerivaML, tmp_path: Path) -> None:
    s = add_subjects(ml, 4)
    images = add_images(ml, tmp_path, 3)
    ds = ml.create_dataset("Training", "d")
    v1 = ds.add_dataset_members(s[:2] + images[:1])
    v1_members = ml.list_dataset_members(ds.dataset_rid, v1)
    child = ml.create_dataset("Testing", "child")
    child.add_dataset_members(s[3:])
    v2 = ds.add_dataset_members(s[2:3] + images[1:] + [child.dataset_rid])
    assert v2 > v1
    assert ml.list_dataset_members(ds.dataset_rid, v1) == v1_members
    assert ml.list_dataset_members(ds.dataset_rid, str(v1), recurse=True) == v1_members
    assert rids(ml.list_dataset_members(ds.dataset_rid, "0.1.0"), "Subject") == []
    now = ml.list_dataset_members(ds.dataset_rid)
    assert rids(now, "Subject") == sorted(s[:3])
    assert rids(ml.list_dataset_members(ds.dataset_rid, recurse=True), "Subject") == sorted(s)
    assert ml.list_dataset_children(ds.dataset_rid, version=v1) == []
    with pytest.raises(NotFound, match=re.escape("0.1.0, 0.2.0, 0.3.0")):
        ml.list_dataset_members(ds.dataset_rid, "9.9.9")


def test_execution_created_dataset_records_execution(ml: DerivaML) -> None:
    from deriva_ml.execution import ExecutionConfiguration

    s = add_subjects(ml, 2)
    wf = ml.create_workflow("w", "Training", url="https://example.org/w.py", checksum="c0ffee")
    exe = ml.create_execution(ExecutionConfiguration(workflow=wf, description="make data"))
    with exe:
        ds = exe.create_dataset("made", ["Training"])
        ds.add_dataset_members(s)
    hist = ml.dataset_history(ds.dataset_rid)
    assert [h.execution_rid for h in hist] == [exe.execution_rid, exe.execution_rid]
    links = ml.catalog.query("deriva-ml", "Dataset_Execution", {"Dataset": ds.dataset_rid})
    assert [(r["Execution"], r["Asset_Role"]) for r in links] == [(exe.execution_rid, "Output")]
