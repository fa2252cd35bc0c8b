"""Demo inputs for the runner: a dataset of point files and a starting model.

``python -m models.demo_data`` (from ``examples/demo_project``) creates, in the demo catalog:

- an asset table ``Points`` (domain schema) and, as outputs of one ``Ingest`` execution, a few CSV files of
  noisy points on ``y = 3x + 1`` plus a ``model.json`` (``Execution_Asset``) to warm-start a fit from;
- a ``Training`` dataset whose members are the point files.

It prints the RIDs and the command lines that use them::

    deriva-ml-run datasets=points datasets.rid=<DATASET> assets=warm_start assets.rid=<MODEL>
"""

from __future__ import annotations

import argparse
import json
import random
from typing import Any

import attrs

from deriva_ml.core.records import ExecutionConfiguration

POINTS_TABLE = "Points"


@attrs.frozen
class DemoInputs:
    dataset_rid: str
    model_rid: str
    point_files: tuple[str, ...]


def create_demo_inputs(ml: Any, n_files: int = 3, points_per_file: int = 20, seed: int = 1) -> DemoInputs:
    """Create the ``Points`` table (if needed), the point files, a starting model and the dataset."""
    if POINTS_TABLE not in ml.list_asset_tables():
        ml.create_asset(POINTS_TABLE, comment="CSV files of (x, y) points for the demo linear fit")
    workflow = ml.create_workflow("Demo Points", "Ingest", "Generate the demo point files and starting model")
    rng = random.Random(seed)
    config = ExecutionConfiguration(workflow=workflow, description="Demo inputs: point files and a starting model")
    with ml.create_execution(config) as exe:
        for i in range(n_files):
            rows = ["x,y"]
            for _ in range(points_per_file):
                x = rng.uniform(-1, 1)
                rows.append(f"{x:.6f},{3.0 * x + 1.0 + rng.gauss(0, 0.1):.6f}")
            exe.asset_file_path(POINTS_TABLE, f"points_{i}.csv").write_text("\n".join(rows) + "\n")
        exe.asset_file_path("Execution_Asset", "model.json").write_text(json.dumps({"w": 2.5, "b": 0.5}))
    uploaded = exe.upload_execution_outputs()
    files = tuple(a.rid for a in uploaded[f"{ml.domain_schema}/{POINTS_TABLE}"])
    (model,) = uploaded["deriva-ml/Execution_Asset"]
    dataset = ml.create_dataset(dataset_types=["Training"], description="Demo point files")
    dataset.add_dataset_members(list(files))
    return DemoInputs(str(dataset.dataset_rid), str(model.rid), files)


def main() -> None:
    from deriva_ml import DerivaML

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--catalog", default="demo", help="embedded catalog id (default: demo, as configs/deriva.py)")
    p.add_argument("--files", type=int, default=3)
    args = p.parse_args()
    with DerivaML("local", args.catalog) as ml:
        made = create_demo_inputs(ml, n_files=args.files)
    print(f"dataset {made.dataset_rid} ({len(made.point_files)} point files), starting model {made.model_rid}")
    print(f"  deriva-ml-run datasets=points datasets.rid={made.dataset_rid}")
    print(
        f"  deriva-ml-run datasets=points datasets.rid={made.dataset_rid} assets=warm_start assets.rid={made.model_rid}"
    )


if __name__ == "__main__":
    main()
