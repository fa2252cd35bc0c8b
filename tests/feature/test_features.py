"""Features end to end on every backend: create, describe, record classes, add_features at upload, read back."""

from __future__ import annotations

import sqlite3

import attrs
import pytest
from feature_helpers import add_feature_schema

from deriva_ml import DerivaML
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.errors import RIDNotFound, ValidationError
from deriva_ml.core.schema_defs import ColumnDef
from deriva_ml.execution import ExecutionConfiguration
from deriva_ml.feature import FeatureRecord, InvalidFeatureValue, UnknownFeature, select_majority_vote
from deriva_ml.testing import add_subjects


def _health(ml: DerivaML) -> type[FeatureRecord]:
    return ml.create_feature(
        "Subject",
        "Health",
        terms=["Diagnosis"],
        metadata=[ColumnDef("Confidence", "float4"), ColumnDef("Note", "text")],
        optional=["Note"],
        comment="diagnosis of a subject",
    )


def test_create_feature_find_and_lookup(ml: DerivaML) -> None:
    Health = _health(ml)
    assert Health.__name__ == "SubjectFeatureHealth"
    assert [(f.target_table.name, f.feature_name) for f in ml.find_features()] == [("Subject", "Health")]
    assert ml.find_features("Image") == []
    f = ml.lookup_feature("Subject", "Health")
    assert f.feature_table.name == "Execution_Subject_Health" and f.feature_table.schema == ml.domain_schema
    assert (f.term_columns, f.asset_columns, f.value_columns) == (("Diagnosis",), (), ("Confidence", "Note"))
    assert ml.lookup_term("Feature_Name", "Health").description == "diagnosis of a subject"
    # a second handle reads the same description from the catalog's model
    other = DerivaML(ml.host_name, ml.catalog_id, home=ml.home, catalog=ml.catalog, store=ml.store)
    assert other.lookup_feature("Subject", "Health") == f
    with pytest.raises(UnknownFeature, match="'Subject' has no feature 'Nope'; its features: 'Health'"):
        ml.lookup_feature("Subject", "Nope")
    with pytest.raises(ValidationError, match="already exists"):
        _health(ml)


def test_record_class_is_frozen_and_validates_every_field(ml: DerivaML) -> None:
    _health(ml)
    Health = ml.feature_record_class("Subject", "Health")
    (s,) = add_subjects(ml, ["Ann"])
    r = Health(Subject=s, Diagnosis="gla", Confidence=1)  # synonym -> name; int -> float
    assert (r.Diagnosis, r.Confidence, r.Feature_Name, r.Note, r.Execution) == ("Glaucoma", 1.0, "Health", None, None)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        r.Diagnosis = "Normal"  # type: ignore[misc]
    cases = [
        (
            dict(Diagnosis="Flu", Confidence=0.5),
            r"\.Diagnosis: 'Flu' is not a term of vocabulary 'Diagnosis'; known terms: 'Cataract', 'Glaucoma', 'Normal'",
        ),
        (dict(Diagnosis="Normal", Confidence="high"), r"\.Confidence: expected a number \(float4\), got 'high'"),
        (dict(Diagnosis="Normal", Confidence=True), r"\.Confidence: expected a number"),
        (dict(Diagnosis="Normal", Confidence=0.1, Note=3), r"\.Note: expected text"),
        (dict(Diagnosis=None, Confidence=0.1), r"\.Diagnosis: a term of 'Diagnosis' is required"),
        (dict(Diagnosis="Normal", Confidence=0.1, Feature_Name="Other"), r"\.Feature_Name: must be 'Health'"),
        (dict(Diagnosis="Normal", Confidence=0.1, Execution="not a rid"), r"\.Execution: expected a RID"),
    ]
    for kwargs, message in cases:
        with pytest.raises(InvalidFeatureValue, match=message):
            Health(Subject=s, **kwargs)
    with pytest.raises(InvalidFeatureValue, match=r"SubjectFeatureHealth\.Subject: expected a RID"):
        Health(Subject="Ann", Diagnosis="Normal", Confidence=0.1)
    with pytest.raises(TypeError, match="Diagnosis"):
        Health(Subject=s, Confidence=0.1)  # a required field left out
    with pytest.raises(TypeError, match="Colour"):
        Health(Subject=s, Diagnosis="Normal", Confidence=0.1, Colour="red")
    # a term added after the class was made is found (the vocabulary is read again on a miss)
    ml.add_term("Diagnosis", "Myopia", "short sight")
    assert Health(Subject=s, Diagnosis="Myopia", Confidence=0.1).Diagnosis == "Myopia"


def test_values_are_written_at_upload_with_the_outputs_they_reference(ml: DerivaML, workflow) -> None:
    ml.create_feature("Subject", "Scan_Model", assets=["Model"], metadata=[ColumnDef("Score", "int4")])
    Rec = ml.feature_record_class("Subject", "Scan_Model")
    subjects = add_subjects(ml, ["a", "b", "c"])
    with ml.create_execution(ExecutionConfiguration(workflow=workflow)) as exe:
        weights = exe.asset_file_path("Model", "weights.bin")
        weights.write_bytes(b"weights")
        n = exe.add_features([Rec(Subject=s, Model=weights, Score=i) for i, s in enumerate(subjects)])
        assert n == 3
        assert ml.list_feature_values("Subject", "Scan_Model") == []  # nothing written before the upload
    up = exe.upload_execution_outputs()
    model_rid = up[f"{ml.domain_schema}/Model"][0].rid
    values = ml.list_feature_values("Subject", "Scan_Model")
    assert sorted((v.Subject, v.Model, v.Score, v.Execution) for v in values) == sorted(
        (s, model_rid, i, exe.execution_rid) for i, s in enumerate(subjects)
    )
    assert all(isinstance(v, Rec) and v.RCT and v.RID for v in values)
    # an asset given by RID (the model uploaded above) works in a later execution
    with ml.create_execution(ExecutionConfiguration(workflow=workflow)) as exe2:
        exe2.add_features([Rec(Subject=subjects[0], Model=model_rid, Score=9)])
    exe2.upload_execution_outputs()
    assert len(ml.list_feature_values("Subject", "Scan_Model")) == 4
    assert [v.Score for v in ml.list_feature_values("Subject", "Scan_Model", execution_rids=[exe2.execution_rid])] == [
        9
    ]


def test_add_features_validates_everything_before_recording_anything(ml: DerivaML, workflow) -> None:
    Health = _health(ml)
    ml.create_feature("Subject", "Scan_Model", assets=["Model"])
    Scan = ml.feature_record_class("Subject", "Scan_Model")
    a, b = add_subjects(ml, ["a", "b"])
    with ml.create_execution(ExecutionConfiguration(workflow=workflow)) as exe:
        good = Health(Subject=a, Diagnosis="Normal", Confidence=0.9)
        ghost = "1-ZZZZ" if ml.host_name == "local" else "ZZZZ"
        with pytest.raises(RIDNotFound, match=ghost):
            exe.add_features([good, Health(Subject=ghost, Diagnosis="Normal", Confidence=0.1)])
        with pytest.raises(InvalidFeatureValue, match=r"Scan_Model.Model: .* is not an output of this execution"):
            exe.add_features([good, Scan(Subject=a, Model=exe.working_dir / "nowhere.bin")])
        with pytest.raises(InvalidFeatureValue, match=r"\.Execution: '1-AAAA' is another execution"):
            exe.add_features([Health(Subject=a, Diagnosis="Normal", Confidence=0.9, Execution="1-AAAA")])
        with pytest.raises(ValidationError, match="two different values of Execution_Subject_Health for target"):
            exe.add_features([good, Health(Subject=a, Diagnosis="Glaucoma", Confidence=0.9)])
        with pytest.raises(ValidationError, match="is not a feature record"):
            exe.add_features([{"Subject": a}])
        assert exe.add_features([good]) == 1
        assert exe.add_features([good]) == 0  # the same value again: nothing new
        with pytest.raises(ValidationError, match="already has a value from this execution"):
            exe.add_features([Health(Subject=a, Diagnosis="Cataract", Confidence=0.9)])
        assert exe.add_features([Health(Subject=b, Diagnosis="Cataract", Confidence=0.5)]) == 1
    exe.upload_execution_outputs()
    values = ml.list_feature_values("Subject", "Health")
    assert sorted((v.Subject, v.Diagnosis) for v in values) == sorted([(a, "Normal"), (b, "Cataract")])


def test_an_upload_repeated_after_a_crash_writes_each_value_once(backend, workflow) -> None:
    ml = backend()
    add_feature_schema(ml)
    Health = _health(ml)
    subjects = add_subjects(ml, [f"s{i}" for i in range(5)])
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow))
    with exe:
        exe.add_features([Health(Subject=s, Diagnosis="Normal", Confidence=0.5) for s in subjects])
    exe.upload_execution_outputs()
    assert len(ml.list_feature_values("Subject", "Health")) == 5
    # a crash after the catalog accepted the rows but before the manifest recorded it: the values are pending again
    db = sqlite3.connect(exe.working_dir / "manifest.sqlite")
    with db:
        db.execute("UPDATE feature_value SET state='pending'")
    db.close()
    restored = backend().restore_execution(exe.execution_rid)
    restored.upload_execution_outputs()
    restored.upload_execution_outputs()
    rows = ml.catalog.query(ml.domain_schema, "Execution_Subject_Health")
    assert sorted(r["Subject"] for r in rows) == sorted(subjects)


def test_majority_vote_across_executions(ml: DerivaML, workflow) -> None:
    Health = _health(ml)
    a, b = add_subjects(ml, ["a", "b"])
    votes = [("Normal", "Glaucoma"), ("Glaucoma", "Glaucoma"), ("Normal", "Cataract")]
    runs = []
    for va, vb in votes:
        with ml.create_execution(ExecutionConfiguration(workflow=workflow)) as exe:
            exe.add_features(
                [Health(Subject=a, Diagnosis=va, Confidence=0.5), Health(Subject=b, Diagnosis=vb, Confidence=0.5)]
            )
        exe.upload_execution_outputs()
        runs.append(exe.execution_rid)
    assert len(ml.list_feature_values("Subject", "Health")) == 6
    voted = {v.Subject: v.Diagnosis for v in ml.list_feature_values("Subject", "Health", select_majority_vote())}
    assert voted == {a: "Normal", b: "Glaucoma"}
    newest = ml.list_feature_values("Subject", "Health", FeatureRecord.select_newest)
    assert {v.Subject: v.Execution for v in newest} == {a: runs[-1], b: runs[-1]}
    first = ml.list_feature_values("Subject", "Health", FeatureRecord.select_first)
    assert {v.Subject: v.Execution for v in first} == {a: runs[0], b: runs[0]}
    by_run = ml.fetch_table_features("Subject", selector=FeatureRecord.select_by_execution(runs[1]))
    assert {v.Subject: v.Diagnosis for v in by_run["Health"]} == {a: "Glaucoma", b: "Glaucoma"}
    assert list(ml.fetch_table_features("Subject")) == ["Health"]
    assert ml.feature_values("Subject", "Health", select_majority_vote()) == ml.list_feature_values(
        "Subject", "Health", select_majority_vote()
    )


def test_feature_tables_are_in_the_domain_schema_and_the_name_is_a_term(ml: DerivaML) -> None:
    _health(ml)
    ft = ml.model().table(ml.domain_schema, "Execution_Subject_Health")
    assert ft is not None and ft.column("Feature_Name").default == "Health"
    names = {r["Name"] for r in ml.catalog.query(ML_SCHEMA, "Feature_Name")}
    assert "Health" in names


def test_values_wait_for_the_output_they_reference(ml: DerivaML, workflow) -> None:
    ml.create_feature("Subject", "Scan_Model", assets=["Model"])
    Rec = ml.feature_record_class("Subject", "Scan_Model")
    (s,) = add_subjects(ml, ["a"])
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow))
    with pytest.raises(RuntimeError), exe:
        weights = exe.asset_file_path("Model", "weights.bin")
        weights.write_bytes(b"half written")
        exe.add_features([Rec(Subject=s, Model=weights)])
        raise RuntimeError("training crashed")
    # the output is unsealed (the run failed): left local, so the value that names it waits
    exe.upload_execution_outputs(unsealed="skip")
    assert ml.list_feature_values("Subject", "Scan_Model") == []
    up = exe.upload_execution_outputs(unsealed="complete")
    (model,) = up[f"{ml.domain_schema}/Model"]
    assert [(v.Subject, v.Model) for v in ml.list_feature_values("Subject", "Scan_Model")] == [(s, model.rid)]
