"""The pure core of deriva_ml: records, status transitions, effects, codec. No I/O here.

Nothing in this package opens files, talks to a network, reads a clock or the environment, or
imports ``deriva``, ``dulwich``, ``diskcache``, ``sqlite3`` or ``requests`` (a test guards it).
"""

from deriva_ml.core.errors import (
    DerivaMLException,
    InvalidRID,
    InvalidTransition,
    RIDNotFound,
    UnknownTerm,
)
from deriva_ml.core.records import (
    AssetSpec,
    DatasetSpec,
    DatasetVersion,
    ExecutionConfiguration,
    ExecutionRecord,
    StatusChange,
    Term,
    Workflow,
    transition,
)
from deriva_ml.core.rid import RID
from deriva_ml.core.status import Status

__all__ = [
    "RID",
    "AssetSpec",
    "DatasetSpec",
    "DatasetVersion",
    "DerivaMLException",
    "ExecutionConfiguration",
    "ExecutionRecord",
    "InvalidRID",
    "InvalidTransition",
    "RIDNotFound",
    "Status",
    "StatusChange",
    "Term",
    "UnknownTerm",
    "Workflow",
    "transition",
]
