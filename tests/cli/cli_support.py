"""Shared by the CLI tests: run the entry point as a user does, and build a small catalog to look at."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from deriva_ml import DerivaML, ExecutionConfiguration
from deriva_ml.dataset.aux_classes import DatasetSpec
from deriva_ml.testing import add_domain_schema


def run_cli(*args: str, home: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m deriva_ml.cli ARGS`` in a subprocess with ``DERIVA_ML_HOME=home``."""
    env = {**os.environ, "DERIVA_ML_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "deriva_ml.cli", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def populate(ml: DerivaML, token: str = "", n_outputs: int = 1) -> dict[str, Any]:
    """A parent execution with a versioned dataset input, an output file, and nested children (a tree)."""
    add_domain_schema(ml)
    wf = ml.create_workflow(
        name="CLI Training",
        workflow_type="Training",
        description="for the CLI tests",
        url="https://github.com/org/repo/blob/abc123/train.py",
        checksum="c" * 40,
        version="1.2.3",
    )
    with ml.create_execution(ExecutionConfiguration(workflow=wf, description="make data")) as maker:
        ds = maker.create_dataset(description="d", dataset_types=[])
    cfg = ExecutionConfiguration(
        workflow=wf, description="train the model", datasets=[DatasetSpec(rid=ds.dataset_rid, version="0.1.0")]
    )
    with ml.create_execution(cfg) as parent:
        parent.asset_file_path("Model", "weights.bin").write_bytes((b"w" * 2048)[: 2048 - len(token)] + token.encode())
        for i in range(1, n_outputs):
            parent.asset_file_path("Model", f"extra{i}.bin").write_bytes(f"{token}-{i}".encode())
    parent.upload_execution_outputs()
    children = []
    for i in range(2):
        child = ml.create_execution(ExecutionConfiguration(workflow=wf, description=f"fold {i}"))
        parent.add_nested_execution(child, sequence=i)
        children.append(child.execution_rid)
    grandchild = ml.create_execution(ExecutionConfiguration(workflow=wf, description="fold 0 part"))
    from deriva_ml.services.executions import add_nested

    add_nested(ml.ports, children[0], grandchild.execution_rid, 0)
    return {
        "parent": parent.execution_rid,
        "maker": maker.execution_rid,
        "dataset": ds.dataset_rid,
        "children": children,
        "grandchild": grandchild.execution_rid,
        "workflow": parent.workflow.rid,
    }
