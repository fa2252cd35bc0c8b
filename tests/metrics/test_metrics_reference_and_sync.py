"""Issue 17: a catalog made like the reference package's (no summary table, no Metrics_File term) still
records and reads metrics (the asset alone); offline replay (sync) carries the asset and the summary rows."""

from __future__ import annotations

import attrs
import pytest
from execution.test_reference_layout import reference_like_tables

from deriva_ml import DerivaML
from deriva_ml.catalog.schema import SEED_TERMS
from deriva_ml.catalog.sqlite import SQLiteCatalog
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.effects import Batch, Insert
from deriva_ml.execution import ExecutionConfiguration
from deriva_ml.store.local import LocalObjectStore
from deriva_ml.sync import sync
from deriva_ml.testing import make_workflow


def _reference_catalog(tmp_path) -> DerivaML:
    cat = SQLiteCatalog(tmp_path / "ref.sqlite")
    cat.create_tables(reference_like_tables())
    # the reference's seed terms, without the Metrics_File asset type
    cat.apply(
        Batch(
            tuple(
                Insert(ML_SCHEMA, vocab, [t for t in terms if t["Name"] != "Metrics_File"], on_conflict_skip=True)
                for vocab, terms in SEED_TERMS.items()
            )
        )
    )
    return DerivaML(
        "ref.example.org",
        "1",
        catalog=cat,
        store=LocalObjectStore(tmp_path / "objects"),
        home=tmp_path,
        domain_schema="ref",
    )


def test_reference_catalog_without_the_extension_works(tmp_path):
    ml = _reference_catalog(tmp_path)
    assert ml.model().table(ML_SCHEMA, "Execution_Metric") is None
    parent = ml.create_execution(ExecutionConfiguration(workflow=make_workflow(), description="sweep"))
    kids = []
    with parent:
        for i, final in enumerate([0.4, 0.2, 0.3]):
            with ml.create_execution(ExecutionConfiguration(workflow=make_workflow(), description=f"c{i}")) as exe:
                for epoch in range(3):
                    exe.log_metrics({"loss": final + (2 - epoch), "accuracy": 0.5}, step=epoch)
            exe.upload_execution_outputs()
            parent.add_nested_execution(exe, sequence=i)
            kids.append(exe.execution_rid)
    # a server-like catalog (not embedded) never gets the table without being asked
    assert ml.model().table(ML_SCHEMA, "Execution_Metric") is None
    assert "Metrics_File" in [t.name for t in ml.list_vocabulary_terms("Asset_Type")]
    assert [m.value for m in ml.list_metrics(kids[1]) if m.name == "loss"] == [2.2, 1.2, 0.2]
    assert ml.metric_summary(kids[1])["loss"].last_value == 0.2
    best = ml.best_execution(parent.execution_rid, "loss")
    assert best is not None and best.rid == kids[1]
    assert [r.rid for r in ml.find_executions(parent=parent.execution_rid, metric="loss", order="max")] == [
        kids[0],
        kids[2],
        kids[1],
    ]
    # once the extension is added, it holds the runs uploaded before (backfilled) and new uploads fill it
    assert ml.add_metrics_table() is True
    rows = ml.catalog.query(ML_SCHEMA, "Execution_Metric", {"Execution": kids})
    assert sorted((r["Execution"], r["Name"], r["Count"]) for r in rows) == sorted(
        (k, n, 3) for k in kids for n in ("loss", "accuracy")
    )
    assert ml.best_execution(parent.execution_rid, "loss").rid == kids[1]
    with ml.create_execution(ExecutionConfiguration(workflow=make_workflow())) as exe:
        exe.log_metric("loss", 0.05)
    exe.upload_execution_outputs()
    rows = ml.catalog.query(ML_SCHEMA, "Execution_Metric", {"Execution": exe.execution_rid})
    assert [(r["Name"], r["Last_Value"], r["Count"]) for r in rows] == [("loss", 0.05, 1)]
    ml.close()


@pytest.fixture
def server(tmp_path):
    from ermrest_fake import FakeErmrest
    from hatrac_server import HatracTestServer, make_store

    from deriva_ml.catalog.ermrest import create_ml_catalog

    with FakeErmrest() as er, HatracTestServer() as hs:
        cat = create_ml_catalog(er.host, "offline", scheme="http", credential={})
        ml = DerivaML(er.host, cat.catalog_id, catalog=cat, store=make_store(hs), home=tmp_path / "live-home")
        yield ml
        ml.close()


def test_sync_carries_the_metrics_asset_and_summary_rows(tmp_path, server):
    offline = DerivaML("local", "offline", home=tmp_path / "home")
    with offline.create_execution(ExecutionConfiguration(workflow=make_workflow(), description="offline")) as exe:
        for epoch in range(3):
            exe.log_metrics({"loss": 1.0 / (epoch + 1), "accuracy": 0.5 + epoch / 10}, step=epoch)
    exe.upload_execution_outputs()
    rid = exe.execution_rid
    assert offline.model().table(ML_SCHEMA, "Execution_Metric") is not None  # embedded: created on first use
    assert server.model().table(ML_SCHEMA, "Execution_Metric") is None

    report = sync(offline, server)
    new_rid = report.target_rid(rid)
    server.model(refresh=True)
    assert server.model().table(ML_SCHEMA, "Execution_Metric") is not None  # the DDL travelled in the journal
    assert server.list_metrics(new_rid) == offline.list_metrics(rid)
    assert server.metric_summary(new_rid) == offline.metric_summary(rid)
    rows = server.catalog.query(ML_SCHEMA, "Execution_Metric", {"Execution": new_rid})
    assert sorted(r["Name"] for r in rows) == ["accuracy", "loss"]

    # values logged later and uploaded again: the summary update and the larger snapshot travel too
    exe.log_metric("loss", 0.01, step=3)
    exe.upload_execution_outputs()
    sync(offline, server)
    assert server.metric_summary(new_rid)["loss"].last_value == 0.01
    assert server.metric_summary(new_rid)["loss"].count == 4
    assert server.list_metrics(new_rid) == offline.list_metrics(rid)
    assert len(server.catalog.query(ML_SCHEMA, "Execution_Metric", {"Execution": new_rid})) == 2
    # the series read on the target equals what was logged, field for field
    assert [attrs.astuple(m) for m in server.list_metrics(new_rid)] == [attrs.astuple(m) for m in exe.metrics()]
    offline.close()
