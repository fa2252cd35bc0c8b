"""Logged metrics are part of an execution's content: the values and steps count, the times of logging do not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

from deriva_ml import DerivaML, ExecutionConfiguration
from deriva_ml.provenance import canonical_record, gather_execution
from provenance.prov_support import make_workflow


def _run(tmp_path: Path, name: str, start: datetime, losses: list[float]) -> dict:
    ticks = count()
    ml = DerivaML("local", name, home=tmp_path / name, clock=lambda: start + timedelta(seconds=next(ticks)))
    with ml.create_execution(ExecutionConfiguration(workflow=make_workflow("train"), argv=("train.py",))) as exe:
        for epoch, loss in enumerate(losses):
            exe.log_metrics({"loss": loss, "accuracy": 1.0 - loss}, step=epoch)
    exe.upload_execution_outputs()
    doc = canonical_record(gather_execution(ml.ports, ml._schema, exe.execution_rid))
    ml.close()
    return doc


def test_same_values_at_other_times_are_the_same_content(tmp_path: Path) -> None:
    a = _run(tmp_path, "a", datetime(2026, 1, 1, tzinfo=UTC), [0.5, 0.25, 0.125])
    b = _run(tmp_path, "b", datetime(2026, 6, 1, 12, tzinfo=UTC), [0.5, 0.25, 0.125])
    assert a["content"]["outputs"]["metrics"] == {
        "format": "deriva-ml-metrics/1",
        "series": {"loss": [[0, 0.5], [1, 0.25], [2, 0.125]], "accuracy": [[0, 0.5], [1, 0.75], [2, 0.875]]},
    }
    # the metrics log itself (whose bytes hold the times) is represented by the series, not by its MD5
    assert all(x["filename"] != "metrics.jsonl" for x in a["content"]["outputs"]["assets"])
    assert a["content"]["outputs"] == b["content"]["outputs"]


def test_other_values_are_other_content(tmp_path: Path) -> None:
    a = _run(tmp_path, "a", datetime(2026, 1, 1, tzinfo=UTC), [0.5, 0.25])
    b = _run(tmp_path, "b", datetime(2026, 1, 1, tzinfo=UTC), [0.5, 0.3])
    assert a["content"]["outputs"]["metrics"] != b["content"]["outputs"]["metrics"]
    assert a["hash"] != b["hash"]
