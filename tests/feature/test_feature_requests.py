"""Round trips of features on an ERMrest + Hatrac server (the fakes; the live server when set): writing N values
and listing 10,000 values cost a constant number of catalog requests (counted at the HTTP boundary)."""

from __future__ import annotations

from collections.abc import Callable

from feature_helpers import add_feature_schema
from live_support import http_log

from deriva_ml import DerivaML
from deriva_ml.core.effects import Batch, Insert
from deriva_ml.core.schema_defs import ColumnDef
from deriva_ml.execution import ExecutionConfiguration
from deriva_ml.testing import add_subjects, make_workflow


def _write(ml: DerivaML, Health: type, subjects: list[str]) -> tuple[int, int, str]:
    """(catalog requests of add_features, of the feature part of the upload, execution RID)."""
    wf = make_workflow("feature requests", "Annotation")
    exe = ml.create_execution(ExecutionConfiguration(workflow=wf))
    with exe:
        records = [
            Health(Subject=s, Diagnosis=("Normal", "Glaucoma")[i % 2], Confidence=0.5) for i, s in enumerate(subjects)
        ]
        with http_log() as log:
            exe.add_features(records)
        staged = log.count(service="ermrest")
    with http_log() as log:
        exe.upload_execution_outputs()
    posts = [p for m, s, p in log.entries if s == "ermrest" and m == "POST" and "Execution_Subject_Health" in p]
    assert len(posts) == 1, log.entries  # every value of the feature in one insert
    return staged, log.count(service="ermrest"), exe.execution_rid


def test_writing_values_is_a_constant_number_of_requests(remote_backend: Callable[[], DerivaML]) -> None:
    ml = remote_backend()
    add_feature_schema(ml)
    Health = ml.create_feature("Subject", "Health", terms=["Diagnosis"], metadata=[ColumnDef("Confidence", "float4")])
    subjects = add_subjects(ml, [f"s{i}" for i in range(900)])
    few = _write(ml, Health, subjects[:5])
    some = _write(ml, Health, subjects[5:205])
    many = _write(ml, Health, subjects[205:])
    # the upload writes every value in one insert, however many (up to the adapter's batch size, 1000 rows)
    assert few[1] == some[1] == many[1], (few, some, many)
    # add_features checks every target row in one query, which the adapter splits only when the RID list
    # outgrows its URL budget (a few hundred RIDs per request)
    assert few[0] == some[0] == 1
    assert many[0] <= 3, many
    assert len(ml.list_feature_values("Subject", "Health")) == 900


def test_listing_10000_values_is_a_constant_number_of_requests(remote_backend: Callable[[], DerivaML]) -> None:
    ml = remote_backend()
    add_feature_schema(ml)
    Health = ml.create_feature("Subject", "Health", terms=["Diagnosis"], metadata=[ColumnDef("Confidence", "float4")])
    subjects = add_subjects(ml, [f"s{i}" for i in range(10_000)])
    _, _, rid = _write(ml, Health, subjects[:10])

    def listing() -> tuple[int, int]:
        fresh = remote_backend()  # a new handle: model, vocabulary and values read from the server
        with http_log() as log:
            values = fresh.list_feature_values("Subject", "Health")
        return len(values), log.count(service="ermrest")

    n_small, small = listing()
    assert n_small == 10
    # 9,990 more values written behind the API in one batch (the adapter splits it by its batch size)
    rows = [
        {"Execution": rid, "Subject": s, "Feature_Name": "Health", "Diagnosis": "Cataract", "Confidence": 0.25}
        for s in subjects[10:]
    ]
    ml.catalog.apply(Batch([Insert(ml.domain_schema, "Execution_Subject_Health", rows)]))
    n_big, big = listing()
    assert n_big == 10_000
    assert big == small, (small, big)
    assert big <= 3  # the model, the Diagnosis vocabulary, the values
