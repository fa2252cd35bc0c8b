"""Issue 17 on every backend (embedded, ERMrest + Hatrac fakes, live): the spec example, reading back,
finding the best run of a sweep, ``show``, catalogs with and without the summary table, constant requests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from live_support import http_log, unique_token

from deriva_ml import DerivaML
from deriva_ml.cli._show import gather, render
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.errors import ValidationError
from deriva_ml.core.status import Status
from deriva_ml.execution import ExecutionConfiguration
from deriva_ml.execution._metrics import METRICS_ASSET_TYPE, InvalidMetric, MetricValue
from deriva_ml.testing import make_workflow


def _workflow(token: str):
    return make_workflow(
        f"train {token}", url=f"https://github.com/x/y/blob/0/{token}.py", checksum=token.ljust(40, "0")
    )


def _train(ml: DerivaML, token: str, epochs: int = 3, description: str = "train"):
    """The spec example: train for 3 epochs, log loss and accuracy per epoch, upload."""
    config = ExecutionConfiguration(workflow=_workflow(token), description=description)
    with ml.create_execution(config) as exe:
        for epoch in range(epochs):
            loss = 1.0 / (epoch + 1)
            accuracy = 0.5 + 0.1 * epoch
            exe.log_metric("loss", loss, step=epoch)
            exe.log_metric("accuracy", accuracy, step=epoch)
        exe.asset_file_path("Execution_Asset", "model.txt").write_text(f"model {token}")
    uploaded = exe.upload_execution_outputs()
    return exe, uploaded


@pytest.mark.parametrize("summary_table", [False, True], ids=["asset-only", "with-table"])
def test_spec_example_train_three_epochs_log_and_upload(backend: Callable[[], DerivaML], summary_table: bool):
    ml = backend()
    if summary_table:
        assert ml.add_metrics_table() is True
        assert ml.add_metrics_table() is False  # idempotent
    token = unique_token()
    exe, uploaded = _train(ml, token)
    rid = exe.execution_rid
    expected = [("loss", 1.0, 0), ("accuracy", 0.5, 0), ("loss", 0.5, 1), ("accuracy", 0.6, 1)]
    expected += [("loss", 1 / 3, 2), ("accuracy", 0.5 + 0.1 * 2, 2)]
    assert [(m.name, m.value, m.step) for m in exe.metrics()] == expected

    # the snapshot is an Execution_Metadata output of type Metrics_File
    metas = uploaded[f"{ML_SCHEMA}/Execution_Metadata"]
    (asset,) = [a for a in metas if a.filename == "metrics.jsonl"]
    assert METRICS_ASSET_TYPE in asset.asset_types

    # read back through a fresh handle (no local working directory involved for the series)
    fresh = backend()
    series = fresh.list_metrics(rid)
    assert series == list(exe.metrics())
    assert all(isinstance(m, MetricValue) for m in series)
    times = [m.time for m in series]
    assert times == sorted(times) and times[0].tzinfo is not None
    summary = fresh.metric_summary(rid)
    assert list(summary) == ["loss", "accuracy"] or set(summary) == {"loss", "accuracy"}
    assert summary["loss"].last_value == pytest.approx(1 / 3) and summary["loss"].last_step == 2
    assert summary["loss"].count == 3 and summary["loss"].best("min") == pytest.approx(1 / 3)
    assert summary["accuracy"].best("max") == pytest.approx(0.7) and summary["accuracy"].min == 0.5

    has_table = fresh.model().table(ML_SCHEMA, "Execution_Metric") is not None
    # the embedded catalog gets the summary table on first use; a server only when asked
    assert has_table == (summary_table or ml.host_name == "local")
    if has_table:
        rows = fresh.catalog.query(ML_SCHEMA, "Execution_Metric", {"Execution": rid})
        assert sorted((r["Name"], r["Count"]) for r in rows) == [("accuracy", 3), ("loss", 3)]

    # show prints each metric's last value and count
    info = gather(fresh, rid)
    assert {m["name"]: (m["count"], m["last_value"]) for m in info["metrics"]} == {
        "loss": (3, pytest.approx(1 / 3)),
        "accuracy": (3, pytest.approx(0.7)),
    }
    text = "\n".join(render(info))
    assert "metrics\n" in text and "loss" in text and "last 0.333333 @ step 2  count 3" in text

    # a second upload writes nothing more (same snapshot, same summary rows)
    exe.upload_execution_outputs()
    links = fresh.catalog.query(ML_SCHEMA, "Execution_Metadata_Execution", {"Execution": rid})
    metas = fresh.catalog.query(ML_SCHEMA, "Execution_Metadata", {"RID": [x["Execution_Metadata"] for x in links]})
    assert [m["Filename"] for m in metas].count("metrics.jsonl") == 1
    if has_table:
        assert len(fresh.catalog.query(ML_SCHEMA, "Execution_Metric", {"Execution": rid})) == 2


def test_values_logged_after_an_upload_are_uploaded_by_the_next(backend: Callable[[], DerivaML]):
    ml = backend()
    token = unique_token()
    exe, _ = _train(ml, token, epochs=2)
    exe.log_metric("loss", 0.01, step=99)
    exe.upload_execution_outputs()
    fresh = backend()
    assert [m.step for m in fresh.list_metrics(exe.execution_rid) if m.name == "loss"] == [0, 1, 99]
    assert fresh.metric_summary(exe.execution_rid)["loss"].last_value == 0.01
    assert fresh.metric_summary(exe.execution_rid)["loss"].count == 3


def test_reading_back_decodes_the_local_log_only_when_it_grew(backend: Callable[[], DerivaML]):
    # the uploaded snapshot is the valid lines of the local log and the log only grows: a local log no
    # larger than the snapshot holds nothing more and is not decoded a second time (reading 100,000 values
    # back decoded them twice before: benchmarks/README.md, "Reading metrics back")
    ml = backend()
    exe, _ = _train(ml, unique_token(), epochs=2)
    rid = exe.execution_rid
    log = ml.execution_dir(rid) / "metrics" / "metrics.jsonl"
    assert log == exe.working_dir / "metrics" / "metrics.jsonl"
    uploaded = log.stat().st_size
    assert [m.value for m in ml.list_metrics(rid)] == [1.0, 0.5, 0.5, 0.6]
    # the same number of bytes, rewritten as more (shorter) values: were it decoded, it would win
    line = b'{"name":"x","value":2.0,"step":null,"time_us":0}\n'
    body = line * (uploaded // len(line))
    assert len(body) // len(line) > 4
    log.write_bytes(body[:-1] + b" " * (uploaded - len(body)) + b"\n")
    assert log.stat().st_size == uploaded
    assert [m.value for m in ml.list_metrics(rid)] == [1.0, 0.5, 0.5, 0.6]
    # a log that grew past the snapshot is decoded, and wins when it holds more values
    exe.log_metric("loss", 0.25, step=9)
    values = [m.value for m in ml.list_metrics(rid)]
    assert values == [2.0] * (len(body) // len(line)) + [0.25]


def test_invalid_values_raise_before_anything_is_written(backend: Callable[[], DerivaML]):
    ml = backend()
    with ml.create_execution(ExecutionConfiguration(workflow=_workflow(unique_token()))) as exe:
        exe.log_metric("loss", 1.0)
        for bad in (float("nan"), True, "0.1"):
            with pytest.raises(InvalidMetric, match="'loss'"):
                exe.log_metric("loss", bad)
        with pytest.raises(InvalidMetric, match="step -1"):
            exe.log_metrics({"loss": 1.0}, step=-1)
    assert [m.value for m in exe.metrics()] == [1.0]


def test_sweep_children_found_and_sorted_by_a_metric(backend: Callable[[], DerivaML]):
    ml = backend()
    token = unique_token()
    wf = _workflow(token)
    parent = ml.create_execution(ExecutionConfiguration(workflow=wf, description="sweep"))
    losses = {"lr=0.1": 0.30, "lr=0.01": 0.12, "lr=0.001": 0.45}
    kids = {}
    with parent:
        for i, (desc, final) in enumerate(losses.items()):
            with ml.create_execution(ExecutionConfiguration(workflow=wf, description=desc)) as child:
                child.log_metrics({"loss": final + 1.0, "accuracy": 1 - final}, step=0)
                child.log_metrics({"loss": final, "accuracy": 1 - final / 2}, step=1)
            child.upload_execution_outputs()
            parent.add_nested_execution(child, sequence=i)
            kids[desc] = child.execution_rid
    # an execution outside the sweep with a better loss is not a child
    _train(ml, unique_token(), epochs=1)
    fresh = backend()
    best = fresh.best_execution(parent.execution_rid, "loss")
    assert best is not None and best.rid == kids["lr=0.01"]
    ranked = fresh.find_executions(parent=parent.execution_rid, metric="loss", order="max")
    assert [r.description for r in ranked] == ["lr=0.001", "lr=0.1", "lr=0.01"]
    within = fresh.find_executions(parent=parent.execution_rid, metric="loss", min_value=0.2, max_value=0.4)
    assert [r.description for r in within] == ["lr=0.1"]
    # across all executions: only those that logged the metric, best first
    everywhere = fresh.find_executions(metric="loss", order="min")
    assert everywhere[0].rid == kids["lr=0.01"] and len(everywhere) == 4
    assert fresh.find_executions(metric="no such metric") == []
    # the status filter still works, alone and with a metric
    assert parent.execution_rid in [r.rid for r in fresh.find_executions(status=Status.completed)]
    assert len(fresh.find_executions(Status.failed, metric="loss")) == 0
    assert fresh.best_execution(kids["lr=0.1"], "loss") is None  # no children

    # the CLI's side-by-side view of the sweep
    from deriva_ml.cli._metrics import gather as metrics_gather
    from deriva_ml.cli._metrics import render as metrics_render

    info = metrics_gather(fresh, parent.execution_rid, children=True, sort="accuracy", order="max")
    assert [c["rid"] for c in info["children"]] == [kids["lr=0.01"], kids["lr=0.1"], kids["lr=0.001"]]
    assert info["metrics"] == ["loss", "accuracy"]
    lines = metrics_render(info)
    assert lines[0].split() == ["RID", "Status", "loss", "accuracy"]
    assert lines[1].split() == [kids["lr=0.01"], "Completed", "0.12", "0.94"]
    own = metrics_gather(fresh, kids["lr=0.1"], children=False, sort=None, order="min")
    assert [(m["name"], m["count"], m["last_value"]) for m in own["metrics"]] == [
        ("loss", 2, 0.30),
        ("accuracy", 2, 0.85),
    ]
    assert metrics_render(own)[1].split()[:6] == ["loss", "last", "0.3", "@", "step", "1"]
    assert metrics_render(metrics_gather(fresh, parent.execution_rid, children=False, sort=None, order="min")) == [
        f"execution {parent.execution_rid}: no metrics"
    ]
    with pytest.raises(ValidationError, match="'nope'"):
        metrics_gather(fresh, parent.execution_rid, children=True, sort="nope", order="min")


def test_request_count_is_constant_in_the_number_of_values(remote_backend: Callable[[], DerivaML]):
    """1 value or 10,000 values: the same number of catalog and object-store requests at upload."""
    counts = {}
    for table in (False, True):  # the table is added after both legs without it
        for n in (1, 10_000):
            ml = remote_backend()
            if table:
                ml.add_metrics_table()
            with ml.create_execution(ExecutionConfiguration(workflow=_workflow(unique_token()))) as exe:
                for i in range(n):
                    exe.log_metric("loss", 1.0 / (i + 1), step=i)
                exe.log_metric("accuracy", 0.5)
            with http_log() as log:
                exe.upload_execution_outputs()
            counts[(n, table)] = (log.count(service="ermrest"), log.count(service="hatrac"), log.summary())
            assert len(ml.list_metrics(exe.execution_rid)) == n + 1
            ml.close()
    print({k: v[:2] for k, v in counts.items()})
    for table in (False, True):
        assert counts[(1, table)][:2] == counts[(10_000, table)][:2], (counts[(1, table)], counts[(10_000, table)])
    # the snapshot is one object; the table adds one query and one batch (rows + updates)
    assert counts[(1, True)][1] == counts[(1, False)][1] == 1
    assert counts[(1, True)][0] <= counts[(1, False)][0] + 2


def test_reading_costs_a_constant_number_of_requests(remote_backend: Callable[[], DerivaML]):
    ml = remote_backend()
    exe, _ = _train(ml, unique_token(), epochs=50)
    fresh = remote_backend()
    fresh.model()
    with http_log() as log:
        assert len(fresh.list_metrics(exe.execution_rid)) == 100
    # the links + rows query, then one GET of the snapshot
    assert log.count(service="ermrest") <= 2 and log.count(service="hatrac") == 1, log.summary()
