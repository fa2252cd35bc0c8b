"""Dataset management on every backend: soft delete, member removal that leaves old versions intact, dataset
types, element types, bag size estimates; removal costs a constant number of requests."""

from __future__ import annotations

from typing import Any

import pytest
from data_support import remote
from live_support import http_log

from deriva_ml.core.errors import RIDNotFound, UnknownTerm, ValidationError
from deriva_ml.dataset.aux_classes import DatasetSpec


def _members(ml: Any, rid: str, version: Any = None) -> list[str]:
    return sorted(r["RID"] for r in ml.list_dataset_members(rid, version)["Subject"])


def test_member_removal_keeps_old_versions(ml: Any) -> None:
    subs = [r["RID"] for r in ml.insert("Subject", [{"Name": f"s{i}"} for i in range(6)])]
    ds = ml.create_dataset("Complete", "d")
    v1 = ml.add_dataset_members(ds.dataset_rid, subs)
    v2 = ml.delete_dataset_members(ds.dataset_rid, subs[:2])
    assert str(v2) != str(v1)
    assert _members(ml, ds.dataset_rid) == sorted(subs[2:])
    assert _members(ml, ds.dataset_rid, v1) == sorted(subs)  # the old version still has them
    # dict form, a second removal, then the version before it still lists what it had
    v3 = ml.delete_dataset_members(ds.dataset_rid, {"Subject": [subs[2]]})
    assert _members(ml, ds.dataset_rid, v2) == sorted(subs[2:])
    assert _members(ml, ds.dataset_rid, v3) == sorted(subs[3:])
    # a bag of the old version has the old members
    bag = ml.download_dataset_bag(DatasetSpec(ds.dataset_rid, version=str(v1), materialize=False))
    assert sorted(r["RID"] for r in bag.get_table_as_dict("Subject")) == sorted(subs)
    with pytest.raises(ValidationError, match="are not members"):
        ml.delete_dataset_members(ds.dataset_rid, [subs[0]])
    with pytest.raises(ValidationError, match="not dataset members"):
        ml.delete_dataset_members(ds.dataset_rid, {"Sample": ["1-0000"]})


def test_member_removal_requests_do_not_grow(ml: Any) -> None:
    subs = [r["RID"] for r in ml.insert("Subject", [{"Name": f"s{i}"} for i in range(300)])]
    ds = ml.create_dataset("Complete", "d")
    ml.add_dataset_members(ds.dataset_rid, subs)
    from deriva_ml.dataset import _manage

    counts = []
    for chunk in (subs[:5], subs[5:155]):
        with http_log() as log:
            _manage.delete_dataset_members(ml.ports, ml._schema, ds.dataset_rid, {"Subject": chunk})
        counts.append(log.count(service="ermrest"))
    # the dataset, its links, one delete: 3 for 5 members and for 150 (a delete of more RIDs than fit the
    # adapter's URL budget, about 200, is split by the adapter)
    assert counts[0] == counts[1] == (3 if remote(ml) else 0)
    assert _members(ml, ds.dataset_rid, None) == sorted(subs)  # no version bump through _manage alone
    assert ml.list_dataset_members(ds.dataset_rid, None)["Subject"]  # current version is still the old one


def test_delete_dataset_is_a_soft_delete(ml: Any) -> None:
    parent = ml.create_dataset("Split", "parent")
    child = ml.create_dataset("Training", "child")
    ml.add_dataset_members(parent.dataset_rid, [child.dataset_rid])
    with pytest.raises(ValidationError, match="is nested in dataset"):
        ml.delete_dataset(child.dataset_rid)
    assert ml.delete_dataset(parent.dataset_rid, recurse=True) == [parent.dataset_rid, child.dataset_rid]
    assert ml.find_datasets() == []
    assert {d.dataset_rid for d in ml.find_datasets(deleted=True)} == {parent.dataset_rid, child.dataset_rid}
    assert ml.lookup_dataset(parent.dataset_rid).record.deleted
    with pytest.raises(RIDNotFound):
        ml.delete_dataset("1-ZZZZ")


def test_dataset_types_add_and_remove(ml: Any) -> None:
    ds = ml.create_dataset("Complete", "d")
    ml.add_dataset_type(ds.dataset_rid, "Training")
    ml.add_dataset_type(ds.dataset_rid, "Training")  # once
    assert ml.lookup_dataset(ds.dataset_rid).dataset_types == ("Complete", "Training")
    ml.remove_dataset_type(ds.dataset_rid, "Complete")
    assert ml.lookup_dataset(ds.dataset_rid).dataset_types == ("Training",)
    with pytest.raises(ValidationError, match=r"does not have type\(s\) \['Testing'\]; its types: \['Training'\]"):
        ml.remove_dataset_type(ds.dataset_rid, "Testing")
    with pytest.raises(UnknownTerm, match="Bogus"):
        ml.add_dataset_type(ds.dataset_rid, "Bogus")


def test_element_types_and_bag_size(ml: Any, tmp_path: Any) -> None:
    before = [t.name for t in ml.list_dataset_element_types()]
    assert "Subject" not in before and "Dataset" in before
    t = ml.add_dataset_element_type("Subject")
    assert t.name == "Subject"
    assert ml.add_dataset_element_type("Subject") == t  # idempotent
    assert "Subject" in [x.name for x in ml.list_dataset_element_types()]
    subs = [r["RID"] for r in ml.insert("Subject", [{"Name": f"s{i}"} for i in range(4)])]
    ds = ml.create_dataset("Complete", "d")
    child = ml.create_dataset("Training", "c")
    ml.add_dataset_members(child.dataset_rid, subs[:2])
    ml.add_dataset_members(ds.dataset_rid, [*subs[1:], child.dataset_rid])
    size = ml.estimate_bag_size(ds.dataset_rid)
    assert size["tables"]["Subject"] == {"row_count": 4, "is_asset": False, "asset_bytes": 0}
    assert size["tables"]["Dataset"]["row_count"] == 1
    assert size["total_rows"] == 5 and size["total_asset_bytes"] == 0
    with pytest.raises(ValidationError, match="cannot be dataset members"):
        ml.add_dataset_element_type("Dataset_Type")
    ml.create_vocabulary("Species")
    with pytest.raises(ValidationError, match="vocabulary or association"):
        ml.add_dataset_element_type("Species")
