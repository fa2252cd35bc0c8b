"""The pure planning functions of datasets (no catalog)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from deriva_ml.catalog.schema import ML_TABLES, plain_table
from deriva_ml.core.effects import Insert, Ref, Update
from deriva_ml.core.plans import would_create_cycle
from deriva_ml.core.records import DatasetVersion
from deriva_ml.core.rid import RID
from deriva_ml.core.schema_defs import CatalogModel
from deriva_ml.dataset._plans import (
    current_version_row,
    member_associations,
    nesting_cycle,
    new_member_association,
    plan_create_dataset,
)

NODES = [RID(f"1-000{i}") for i in range(6)]


@given(
    st.lists(st.tuples(st.sampled_from(NODES), st.sampled_from(NODES)), max_size=12),
    st.sampled_from(NODES),
    st.sampled_from(NODES),
)
def test_nesting_cycle_agrees_with_core(edges: list[tuple[RID, RID]], parent: RID, child: RID) -> None:
    assert (nesting_cycle(parent, [child], edges) is not None) == would_create_cycle(parent, child, edges)


def test_member_associations_of_the_ml_schema_and_a_new_table() -> None:
    model = CatalogModel(ML_TABLES)
    found = member_associations(model)
    assert set(found) == {("deriva-ml", "Dataset"), ("deriva-ml", "File")}
    assert found[("deriva-ml", "Dataset")].member_column == "Nested_Dataset"
    subject = plain_table("demo", "Subject")
    dataset = model.table("deriva-ml", "Dataset")
    assert dataset is not None
    assoc = new_member_association(subject, dataset)
    assert (assoc.schema, assoc.name) == ("demo", "Dataset_Subject")
    found = member_associations(CatalogModel((*ML_TABLES, subject, assoc)))
    a = found[("demo", "Subject")]
    assert (a.dataset_column, a.member_column) == ("Dataset", "Subject")


def test_plan_create_dataset_is_one_batch_with_refs() -> None:
    batch = plan_create_dataset("d", ["Training"], DatasetVersion(0, 1, 0), None, "7")
    kinds = [(type(e).__name__, e.table) for e in batch.effects]
    assert kinds == [
        ("Insert", "Dataset"),
        ("Insert", "Dataset_Dataset_Type"),
        ("Insert", "Dataset_Version"),
        ("Update", "Dataset"),
    ]
    version = batch.effects[2]
    update = batch.effects[3]
    assert isinstance(version, Insert) and isinstance(update, Update)
    assert version.rows[0]["Snapshot"] == "7" and version.rows[0]["Dataset"] == Ref("dataset")
    assert update.rows[0] == {"RID": Ref("dataset"), "Version": Ref("version")}


def test_current_version_row_prefers_pointer_then_highest() -> None:
    rows = [{"RID": "a", "Version": "0.10.0"}, {"RID": "b", "Version": "0.9.0"}, {"RID": "c", "Version": "junk"}]
    assert current_version_row(rows)["RID"] == "a"  # type: ignore[index]
    assert current_version_row(rows, "b")["RID"] == "b"  # type: ignore[index]
    assert current_version_row([]) is None
