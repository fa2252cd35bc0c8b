"""A tiny pure-Python model: fit ``y = w * x + b`` by gradient descent on synthetic data.

The model follows the deriva-ml-run protocol: its own parameters come from the ``model_config`` group,
``ml_instance`` and ``execution`` are passed in by the runner.
"""

from __future__ import annotations

import json
import random
from typing import Any

from deriva_ml.core.status import Status


def train_linear(
    learning_rate: float = 0.1,
    epochs: int = 20,
    n_points: int = 50,
    seed: int = 0,
    fail_above: float | None = None,
    *,
    ml_instance: Any,
    execution: Any,
) -> dict[str, float]:
    """Fit a line to noisy points of ``y = 3x + 1``; write ``model.json`` and ``metrics.json`` as outputs.

    ``fail_above``: raise when ``learning_rate`` exceeds it (to demonstrate a failing sweep job).
    """
    if fail_above is not None and learning_rate > fail_above:
        raise FloatingPointError(f"learning_rate={learning_rate} diverges (fail_above={fail_above})")
    rng = random.Random(seed)
    xs = [rng.uniform(-1, 1) for _ in range(n_points)]
    ys = [3.0 * x + 1.0 + rng.gauss(0, 0.1) for x in xs]
    w = b = 0.0
    loss = float("nan")
    for epoch in range(epochs):
        grad_w = grad_b = loss = 0.0
        for x, y in zip(xs, ys, strict=True):
            err = w * x + b - y
            loss += err * err / n_points
            grad_w += 2 * err * x / n_points
            grad_b += 2 * err / n_points
        w -= learning_rate * grad_w
        b -= learning_rate * grad_b
        if epoch % 10 == 0 or epoch == epochs - 1:
            execution.update_status(Status.running, f"epoch {epoch + 1}/{epochs}: loss={loss:.4f}")
    model_path = execution.asset_file_path("Execution_Asset", "model.json")
    model_path.write_text(json.dumps({"w": w, "b": b}))
    metrics = {"loss": loss, "w": w, "b": b, "learning_rate": learning_rate, "epochs": epochs}
    metrics_path = execution.asset_file_path("Execution_Metadata", "metrics.json")
    metrics_path.write_text(json.dumps(metrics, indent=2))
    return metrics
