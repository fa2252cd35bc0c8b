"""deriva_ml: provenance for machine-learning work on a DERIVA catalog.

``DerivaML("local", "my-project")`` works offline on an embedded catalog;
``DerivaML("host.example.org", "1")`` works against a live DERIVA server. Workflows record which code
ran, executions record one run of it: inputs, outputs, status and timing.
"""

from deriva_ml._ml import LOCAL_HOST, CatalogWorkflow, DerivaML, deriva_ml_home
from deriva_ml.core.errors import (
    CatalogBusy,
    CatalogError,
    CatalogUnreachable,
    ChecksumMismatch,
    ConfigurationError,
    ConflictError,
    DerivaMLException,
    DirtyWorkflow,
    ExecutionError,
    ForeignKeyError,
    InvalidFileName,
    InvalidRID,
    InvalidTransition,
    InvalidVersion,
    NotAVocabulary,
    NotFound,
    ObjectNotFound,
    PermissionDenied,
    RIDNotFound,
    StatusConflict,
    StoreError,
    UnknownCatalog,
    UnknownColumn,
    UnknownTable,
    UnknownTerm,
    UploadFailed,
    ValidationError,
    WrongTable,
)
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
    "CatalogBusy",
    "CatalogError",
    "CatalogUnreachable",
    "CatalogWorkflow",
    "ChecksumMismatch",
    "ColumnDef",
    "ConfigurationError",
    "ConflictError",
    "DatasetSpec",
    "DatasetVersion",
    "DerivaML",
    "DerivaMLException",
    "DirtyWorkflow",
    "ExecutionConfiguration",
    "ExecutionError",
    "ExecutionRecord",
    "ForeignKeyError",
    "InvalidFileName",
    "InvalidRID",
    "InvalidTransition",
    "InvalidVersion",
    "NotAVocabulary",
    "NotFound",
    "ObjectNotFound",
    "PermissionDenied",
    "RIDNotFound",
    "Status",
    "StatusConflict",
    "StoreError",
    "Term",
    "UnknownCatalog",
    "UnknownColumn",
    "UnknownTable",
    "UnknownTerm",
    "UploadFailed",
    "ValidationError",
    "Workflow",
    "WrongTable",
    "deriva_ml_home",
]
