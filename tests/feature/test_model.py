"""The feature table layout and feature discovery as pure functions over a CatalogModel (no catalog)."""

from __future__ import annotations

import pytest

from deriva_ml.catalog.schema import ML_TABLES, asset_table, plain_table, vocabulary_table
from deriva_ml.core.errors import ValidationError
from deriva_ml.core.schema_defs import CatalogModel, ColumnDef, ForeignKeyDef, KeyDef, TableDef
from deriva_ml.feature import (
    UnknownFeature,
    feature_of,
    feature_tables_for,
    find_features,
    lookup_feature,
    plan_feature_table,
)

S = "eye"
SUBJECT = plain_table(S, "Subject", [ColumnDef("Name")])
IMAGE, IMAGE_TYPES, IMAGE_EXE = asset_table(S, "Image", referenced_tables=[SUBJECT])
MODEL, MODEL_TYPES, MODEL_EXE = asset_table(S, "Model")
DIAGNOSIS = vocabulary_table(S, "Diagnosis")
GRADE = vocabulary_table(S, "Grade")
BASE = (*ML_TABLES, SUBJECT, IMAGE, IMAGE_TYPES, IMAGE_EXE, MODEL, MODEL_TYPES, MODEL_EXE, DIAGNOSIS, GRADE)


def model(*extra: TableDef) -> CatalogModel:
    return CatalogModel((*BASE, *extra))


def test_the_layout_is_the_reference_packages() -> None:
    t = plan_feature_table(
        model(),
        IMAGE,
        "Prediction",
        terms=[DIAGNOSIS],
        assets=[MODEL],
        metadata=[ColumnDef("Confidence", "float4")],
        optional=["Model"],
        comment="predicted diagnosis",
    )
    assert (t.schema, t.name) == (S, "Execution_Image_Prediction")
    assert [c.name for c in t.columns] == ["Execution", "Image", "Feature_Name", "Diagnosis", "Model", "Confidence"]
    assert t.column("Feature_Name").default == "Prediction"
    assert t.keys == (KeyDef(("Execution", "Image", "Feature_Name")),)
    fks = {fk.columns[0]: (fk.pk_schema, fk.pk_table, fk.pk_columns) for fk in t.foreign_keys}
    assert fks == {
        "Execution": ("deriva-ml", "Execution", ("RID",)),
        "Image": (S, "Image", ("RID",)),
        "Feature_Name": ("deriva-ml", "Feature_Name", ("Name",)),
        "Diagnosis": (S, "Diagnosis", ("Name",)),
        "Model": (S, "Model", ("RID",)),
    }
    nullable = {c.name for c in t.columns if c.nullok}
    assert nullable == {"Model", "Confidence"}  # terms and assets are required unless optional
    assert t.kind == "association" and t.comment == "predicted diagnosis"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"terms": [SUBJECT]}, r"terms=\['Subject'\]: not vocabularies; vocabularies: \[.*'Diagnosis'"),
        ({"assets": [DIAGNOSIS]}, r"assets=\['Diagnosis'\]: not asset tables; asset tables: \[.*'Image'"),
        ({"metadata": [ColumnDef("Image")]}, r"column name\(s\) \['Image'\] repeat or collide"),
        ({"metadata": [ColumnDef("Execution")]}, r"\['Execution'\] repeat or collide"),
        ({"terms": [DIAGNOSIS], "metadata": [ColumnDef("Diagnosis")]}, r"\['Diagnosis'\] repeat"),
        ({"optional": ["Nope"]}, r"optional=\['Nope'\]: not columns of the feature"),
    ],
)
def test_bad_definitions_name_what_is_wrong(kwargs: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        plan_feature_table(model(), IMAGE, "F", **kwargs)


def test_an_existing_feature_is_not_planned_twice() -> None:
    t = plan_feature_table(model(), IMAGE, "Quality", terms=[GRADE])
    with pytest.raises(ValidationError, match="already exists"):
        plan_feature_table(model(t), IMAGE, "Quality", terms=[GRADE])


def test_found_features_describe_their_columns() -> None:
    pred = plan_feature_table(
        model(), IMAGE, "Prediction", terms=[DIAGNOSIS], assets=[MODEL], metadata=[ColumnDef("Confidence", "float4")]
    )
    qual = plan_feature_table(model(), IMAGE, "Quality", terms=[GRADE])
    health = plan_feature_table(model(), SUBJECT, "Health", terms=[DIAGNOSIS])
    m = model(pred, qual, health)
    found = find_features(m)
    assert [(f.target_table.name, f.feature_name) for f in found] == [
        ("Image", "Prediction"),
        ("Image", "Quality"),
        ("Subject", "Health"),
    ]
    f = lookup_feature(m, IMAGE, "Prediction")
    assert (f.term_columns, f.asset_columns, f.value_columns) == (("Diagnosis",), ("Model",), ("Confidence",))
    assert f.term_tables == (("Diagnosis", S, "Diagnosis"),) and f.asset_tables == (("Model", S, "Model"),)
    assert f.target_column == "Image" and f.feature_table == pred
    assert [t.name for t in feature_tables_for(m, IMAGE)] == ["Execution_Image_Prediction", "Execution_Image_Quality"]
    assert feature_tables_for(m, MODEL) == []
    with pytest.raises(UnknownFeature, match=r"'Image' has no feature 'Nope'; its features: 'Prediction', 'Quality'"):
        lookup_feature(m, IMAGE, "Nope")


def test_a_reference_made_feature_table_is_recognised() -> None:
    # as deriva-py's define_association writes it: other column order, no Feature_Name default on an old
    # catalog (the name then comes from the table name), key columns in another order
    t = TableDef(
        schema=S,
        name="Execution_Image_Old_Label",
        columns=(
            ColumnDef("Image", nullok=False),
            ColumnDef("Feature_Name", nullok=False),
            ColumnDef("Execution", nullok=False),
            ColumnDef("Diagnosis", nullok=False),
            ColumnDef("Note", "markdown"),
        ),
        keys=(KeyDef(("Feature_Name", "Image", "Execution")),),
        foreign_keys=(
            ForeignKeyDef(("Image",), S, "Image", ("RID",)),
            ForeignKeyDef(("Feature_Name",), "deriva-ml", "Feature_Name", ("Name",)),
            ForeignKeyDef(("Execution",), "deriva-ml", "Execution", ("RID",)),
            ForeignKeyDef(("Diagnosis",), S, "Diagnosis", ("Name",)),
        ),
    )
    f = feature_of(model(t), t)
    assert f is not None
    assert (f.feature_name, f.target_table.name, f.term_columns, f.value_columns) == (
        "Old_Label",
        "Image",
        ("Diagnosis",),
        ("Note",),
    )


def test_other_associations_are_not_features() -> None:
    m = model()
    assert [t.name for t in m.tables if feature_of(m, t) is not None] == []
