"""Issue 17, item 4: ``run_model`` users log through the execution they are given; a Hydra multirun's parent
shows its children side by side by a metric (``deriva-ml metrics RID --children``). Subprocesses: slow."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deriva_ml import DerivaML

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo_project"

MODEL = textwrap.dedent(
    '''
    """A model that logs its loss per epoch through the execution the runner gives it."""

    from typing import Any


    def train_logged(learning_rate: float = 0.1, epochs: int = 3, *, ml_instance: Any, execution: Any) -> None:
        w = 0.0
        for epoch in range(epochs):
            loss = (3.0 - w) ** 2
            execution.log_metrics({"loss": loss, "w": w}, step=epoch)
            w += learning_rate * 2 * (3.0 - w)
        execution.log_metric("final_loss", (3.0 - w) ** 2)
    '''
)

CONFIG = textwrap.dedent(
    """
    from hydra_zen import builds, store
    from models.logged import train_logged

    store(group="model_config")(builds(train_logged, populate_full_signature=True, zen_partial=True), name="logged")
    """
)


def test_multirun_children_log_metrics_and_the_parent_compares_them(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(DEMO, project)
    (project / "models" / "logged.py").write_text(MODEL)
    (project / "configs" / "zz_logged.py").write_text(CONFIG)
    home = tmp_path / "home"
    env = {**os.environ, "DERIVA_ML_HOME": str(home), "PYTHONWARNINGS": "ignore"}
    env.pop("DERIVA_ML_CONFIG_MODULE", None)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "deriva_ml.execution.runner",
            "-m",
            "model_config=logged",
            "model_config.learning_rate=0.1,0.4,0.2",
            f"hydra.run.dir={tmp_path / 'outputs'}",
            f"hydra.sweep.dir={tmp_path / 'multirun'}",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    with DerivaML("local", "demo", home=home) as ml:
        parents = [r for r in ml.find_executions() if ml.list_nested_executions(r.rid)]
        (parent,) = parents
        kids = ml.list_nested_executions(parent.rid)
        assert len(kids) == 3
        for kid in kids:
            series = ml.list_metrics(kid.rid)
            assert [m.step for m in series if m.name == "loss"] == [0, 1, 2]
            assert [m.name for m in series][-1] == "final_loss"
        best = ml.best_execution(parent.rid, "final_loss")
        # learning rate 0.4 converges fastest: (3 - w)^2 shrinks by (1 - 2 lr)^2 per epoch
        assert best is not None
        lrs = {k.rid: ml.metric_summary(k.rid)["w"].last_value for k in kids}
        assert best.rid == max(lrs, key=lambda r: lrs[r])

    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "deriva_ml.cli",
            "metrics",
            parent.rid,
            "--catalog",
            "demo",
            "--children",
            "--sort",
            "final_loss",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    info = json.loads(cli.stdout)
    assert info["children"][0]["rid"] == best.rid
    assert info["metrics"] == ["loss", "w", "final_loss"]
    values = [c["metrics"]["final_loss"] for c in info["children"]]
    assert values == sorted(values)

    text = subprocess.run(
        [
            sys.executable,
            "-m",
            "deriva_ml.cli",
            "metrics",
            parent.rid,
            "--catalog",
            "demo",
            "--children",
            "--sort",
            "final_loss",
            "--order",
            "max",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["RID", "Status", "loss", "w", "final_loss"]
    assert lines[-1].split()[0] == best.rid  # --order max: the best (smallest) last

    show = subprocess.run(
        [sys.executable, "-m", "deriva_ml.cli", "show", best.rid, "--catalog", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert show.returncode == 0, show.stderr
    assert "metrics\n" in show.stdout and "final_loss" in show.stdout and "count 3" in show.stdout

    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "deriva_ml.cli",
            "metrics",
            parent.rid,
            "--catalog",
            "demo",
            "--children",
            "--sort",
            "nope",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "'nope'" in bad.stderr and "final_loss" in bad.stderr
