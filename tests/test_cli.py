"""The README's main command and the CLI, run as a user would (subprocess, fresh home)."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run(*args: str, home) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DERIVA_ML_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "deriva_ml.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_demo_runs_a_completed_execution_and_reuses_its_catalog(tmp_path):
    first = run("demo", "--json", home=tmp_path)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["status"] == "Completed"
    assert summary["inputs"]["datasets"] and summary["outputs"]
    assert any("centroid_model.json" in f for files in summary["outputs"].values() for f in files)
    assert [h.split(":")[0] for h in summary["status_history"]][-1] == "Completed"
    assert summary["metrics"]["test_accuracy"] > 0.5

    second = run("demo", "--json", home=tmp_path)
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert again["inputs"]["datasets"][0].split("@")[0] == summary["inputs"]["datasets"][0].split("@")[0]
    assert again["execution_rid"] != summary["execution_rid"]

    shown = run("show", again["execution_rid"], "--json", "--catalog", "demo", home=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["execution"]["status"] == "Completed"
    listed = run("executions", "--catalog", "demo", "--status", "Completed", home=tmp_path)
    assert again["execution_rid"] in listed.stdout
    assert run("abort-stale", "--catalog", "demo", home=tmp_path).returncode == 0


def test_demo_prints_a_readable_summary(tmp_path):
    out = run("demo", home=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "status: Completed" in out.stdout
    assert "history:" in out.stdout and "Running: Epoch 5/5" in out.stdout
    # where things are, and what to try next (issue 16 item 5)
    assert f"working directory: {tmp_path}" in out.stdout
    assert f"object store:      {tmp_path / 'catalogs' / 'demo' / 'objects'}" in out.stdout
    rid = out.stdout.split("execution ")[1].split()[0]
    assert f"deriva-ml show {rid} --catalog demo" in out.stdout
    # warnings about the demo's own source (deriva-ml's checkout) are not the user's business
    assert "SourceWarning" not in out.stderr and "uncommitted changes" not in out.stderr, out.stderr
    shown = run("show", rid, "--catalog", "demo", home=tmp_path)
    assert shown.returncode == 0 and "centroid_model.json" in shown.stdout and "Epoch 5/5" in shown.stdout
    assert "deriva-ml demo classifier  [Training]" in shown.stdout  # its own workflow, not the data generation
