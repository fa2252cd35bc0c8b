"""Executions: ``from deriva_ml.execution import ExecutionConfiguration, Workflow, Execution``."""

from typing import Any

from deriva_ml.core.records import ExecutionConfiguration, ExecutionRecord, Workflow
from deriva_ml.core.status import Status
from deriva_ml.execution._execution import Execution
from deriva_ml.execution._paths import AssetFilePath, UploadedAsset


def __getattr__(name: str) -> Any:
    # The hydra-zen runner pieces load hydra only when asked for.
    if name in ("multirun_config", "run_model", "DerivaMLConfig", "DatasetSpecConfig"):
        from deriva_ml.execution import runner

        return getattr(runner, name)
    if name == "notebook_execution":
        from deriva_ml.execution import notebook_runner

        return notebook_runner.notebook_execution
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AssetFilePath",
    "DatasetSpecConfig",
    "DerivaMLConfig",
    "Execution",
    "ExecutionConfiguration",
    "ExecutionRecord",
    "Status",
    "UploadedAsset",
    "Workflow",
    "multirun_config",
    "notebook_execution",
    "run_model",
]
