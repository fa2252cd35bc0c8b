"""deriva_ml: provenance for machine-learning work on a DERIVA catalog.

``DerivaML("local", "my-project")`` works offline on an embedded catalog;
``DerivaML("host.example.org", "1")`` works against a live DERIVA server. Workflows record which code
ran, executions record one run of it: inputs, outputs, status and timing.
"""

from deriva_ml._ml import LOCAL_HOST, CatalogWorkflow, DerivaML, deriva_ml_home
from deriva_ml.core import errors as _errors
from deriva_ml.core.errors import *  # noqa: F403  (every public error: core/errors.py lists them once)
from deriva_ml.core.records import (
    AssetSpec,
    DatasetSpec,
    DatasetVersion,
    ExecutionConfiguration,
    ExecutionRecord,
    Term,
    Workflow,
)
from deriva_ml.core.rid import RID
from deriva_ml.core.schema_defs import ColumnDef
from deriva_ml.core.status import Status

__version__ = "0.1.0"

__all__ = [
    "LOCAL_HOST",
    "RID",
    "AssetSpec",
    "CatalogWorkflow",
    "ColumnDef",
    "DatasetSpec",
    "DatasetVersion",
    "DerivaML",
    "ExecutionConfiguration",
    "ExecutionRecord",
    "Status",
    "Term",
    "Workflow",
    "deriva_ml_home",
]
__all__ += _errors.__all__
