"""Issue 17, durability: a process SIGKILLed while logging loses no value logged before the kill, and one
killed during the upload, once restored, writes the metrics asset and the summary rows exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from deriva_ml import DerivaML
from deriva_ml.core.definitions import ML_SCHEMA

pytestmark = pytest.mark.slow

LOGGER = textwrap.dedent(
    """
    import sys
    from deriva_ml import DerivaML
    from deriva_ml.execution import ExecutionConfiguration
    from deriva_ml.testing import make_workflow

    ml = DerivaML("local", "kill", home=sys.argv[1])
    exe = ml.create_execution(ExecutionConfiguration(workflow=make_workflow(), description="killed while logging"))
    print("RID", exe.execution_rid, flush=True)
    with exe:
        i = 0
        while True:  # until killed
            exe.log_metrics({"loss": 1.0 / (i + 1), "accuracy": i / (i + 1)}, step=i)
            exe.log_metric("lr", 0.001)
            print("LOGGED", i, flush=True)
            i += 1
    """
)


def test_sigkill_while_logging_loses_nothing_logged_before(tmp_path):
    home = tmp_path / "home"
    proc = subprocess.Popen([sys.executable, "-c", LOGGER, str(home)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    rid = proc.stdout.readline().split()[1]
    last = -1
    for line in proc.stdout:
        last = int(line.split()[1])
        if last >= 3000:
            break
    os.kill(proc.pid, signal.SIGKILL)  # while it keeps logging
    proc.wait()
    ml = DerivaML("local", "kill", home=home)
    exe = ml.restore_execution(rid)
    got = exe.metrics()
    steps = [m.step for m in got if m.name == "loss"]
    assert steps[: last + 1] == list(range(last + 1))  # every value acknowledged before the kill, in order
    assert steps == list(range(len(steps)))  # and nothing torn or out of order after it
    assert [m.value for m in got if m.name == "lr"][: last + 1] == [0.001] * (last + 1)
    # the restored execution logs on (a torn last line does not swallow the next value) and uploads
    exe.log_metric("loss", 0.0, step=len(steps))
    exe.upload_execution_outputs()
    remote = ml.list_metrics(rid)
    assert [m.step for m in remote if m.name == "loss"] == list(range(len(steps) + 1))
    assert ml.metric_summary(rid)["loss"].count == len(steps) + 1
    ml.close()


UPLOADER = textwrap.dedent(
    """
    import os, signal, sys
    from deriva_ml import DerivaML
    from deriva_ml.execution import ExecutionConfiguration
    from deriva_ml.testing import make_workflow

    home, kill_table = sys.argv[1], sys.argv[2]
    ml = DerivaML("local", "kill", home=home)
    with ml.create_execution(ExecutionConfiguration(workflow=make_workflow())) as exe:
        for epoch in range(3):
            exe.log_metrics({"loss": 1.0 / (epoch + 1), "accuracy": 0.5 + epoch / 10}, step=epoch)
    print("RID", exe.execution_rid, flush=True)
    inner_apply = ml.catalog.apply
    def apply(batch):
        result = inner_apply(batch)
        if any(getattr(e, "table", "") == kill_table for e in batch.effects):
            os.kill(os.getpid(), signal.SIGKILL)  # after the catalog accepted it, before anything else
        return result
    ml.catalog.apply = apply
    exe.upload_execution_outputs()
    print("DONE", flush=True)
    """
)


@pytest.mark.parametrize("kill_table", ["Execution_Metric", "Execution_Metadata_Execution"])
def test_killed_during_upload_then_restored_writes_everything_once(tmp_path, kill_table):
    home = tmp_path / "home"
    out = subprocess.run([sys.executable, "-c", UPLOADER, str(home), kill_table], capture_output=True, text=True)
    assert out.returncode == -signal.SIGKILL, out.stderr
    assert "DONE" not in out.stdout
    rid = out.stdout.split()[1]
    ml = DerivaML("local", "kill", home=home)
    exe = ml.restore_execution(rid)
    exe.upload_execution_outputs()
    exe.upload_execution_outputs()  # and again: nothing more
    links = ml.catalog.query(ML_SCHEMA, "Execution_Metadata_Execution", {"Execution": rid})
    metas = ml.catalog.query(ML_SCHEMA, "Execution_Metadata", {"RID": [x["Execution_Metadata"] for x in links]})
    assert [m["Filename"] for m in metas].count("metrics.jsonl") == 1
    assert len(ml.catalog.query(ML_SCHEMA, "Execution_Metadata", {"Filename": "metrics.jsonl"})) == 1
    rows = ml.catalog.query(ML_SCHEMA, "Execution_Metric", {"Execution": rid})
    assert sorted((r["Name"], r["Count"]) for r in rows) == [("accuracy", 3), ("loss", 3)]
    assert [(m.name, m.step) for m in ml.list_metrics(rid)] == [(n, s) for s in range(3) for n in ("loss", "accuracy")]
    ml.close()
