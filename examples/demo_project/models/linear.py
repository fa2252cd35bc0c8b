"""A tiny pure-Python model: fit ``y = w * x + b`` by gradient descent.

The model follows the deriva-ml-run protocol: its own parameters come from the ``model_config`` group,
``ml_instance`` and ``execution`` are passed in by the runner. Its data are the ``Points`` files of the
execution's input datasets (``datasets=points datasets.rid=...``), or synthetic points when it has none;
an input ``model.json`` asset (``assets=warm_start assets.rid=...``) is the starting point of the fit.
"""

from __future__ import annotations

import csv
import json
import random
import time
from pathlib import Path
from typing import Any

from deriva_ml.core.status import Status


def load_points(execution: Any) -> tuple[list[float], list[float], list[str]]:
    """The (x, y) rows of every ``Points`` file in the execution's dataset bags, and the files' paths."""
    xs: list[float] = []
    ys: list[float] = []
    files: list[str] = []
    for bag in execution.datasets:
        for member in bag.list_dataset_members(recurse=True).get("Points", []):
            path = Path(member["Filename"])  # a local file inside the downloaded bag
            with path.open(newline="") as fh:
                for row in csv.DictReader(fh):
                    xs.append(float(row["x"]))
                    ys.append(float(row["y"]))
            files.append(str(path))
    return xs, ys, files


def starting_point(execution: Any) -> tuple[float, float, str | None]:
    """``w, b`` of an input ``model.json`` asset (a previous fit), else ``0, 0``."""
    for path in execution.asset_paths.get("Execution_Asset", []):
        if Path(path).name.endswith("model.json"):
            start = json.loads(Path(path).read_text())
            return float(start["w"]), float(start["b"]), str(path)
    return 0.0, 0.0, None


def train_linear(
    learning_rate: float = 0.1,
    epochs: int = 20,
    n_points: int = 50,
    seed: int = 0,
    fail_above: float | None = None,
    sleep: float = 0.0,
    *,
    ml_instance: Any,
    execution: Any,
) -> dict[str, Any]:
    """Fit a line to the input points; write ``model.json`` and ``metrics.json`` as outputs.

    ``fail_above``: raise when ``learning_rate`` exceeds it (to demonstrate a failing sweep job).
    ``sleep``: seconds to wait before fitting (to demonstrate a sweep whose launcher is killed).
    """
    if fail_above is not None and learning_rate > fail_above:
        raise FloatingPointError(f"learning_rate={learning_rate} diverges (fail_above={fail_above})")
    if sleep:
        execution.update_status(Status.running, f"sleeping {sleep}s")
        print(f"model: sleeping {sleep}s in execution {execution.execution_rid}", flush=True)
        time.sleep(sleep)
    xs, ys, files = load_points(execution)
    if not xs:  # no dataset: noisy points of y = 3x + 1
        rng = random.Random(seed)
        xs = [rng.uniform(-1, 1) for _ in range(n_points)]
        ys = [3.0 * x + 1.0 + rng.gauss(0, 0.1) for x in xs]
    n = len(xs)
    w, b, start_file = starting_point(execution)
    loss = float("nan")
    for epoch in range(epochs):
        grad_w = grad_b = loss = 0.0
        for x, y in zip(xs, ys, strict=True):
            err = w * x + b - y
            loss += err * err / n
            grad_w += 2 * err * x / n
            grad_b += 2 * err / n
        w -= learning_rate * grad_w
        b -= learning_rate * grad_b
        if epoch % 10 == 0 or epoch == epochs - 1:
            execution.update_status(Status.running, f"epoch {epoch + 1}/{epochs}: loss={loss:.4f}")
    model_path = execution.asset_file_path("Execution_Asset", "model.json")
    model_path.write_text(json.dumps({"w": w, "b": b}))
    metrics = {
        "loss": loss,
        "w": w,
        "b": b,
        "learning_rate": learning_rate,
        "epochs": epochs,
        "n_points": n,
        "data_files": [Path(f).name for f in files],
        "warm_start": start_file is not None,
    }
    metrics_path = execution.asset_file_path("Execution_Metadata", "metrics.json")
    metrics_path.write_text(json.dumps(metrics, indent=2))
    return metrics
