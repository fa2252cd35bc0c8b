"""Provenance of executions: the canonical record and its hash, diffs, and standard exports.

Heavy libraries (``rocrate``, ``prov``) are imported only inside the export functions.
"""

from __future__ import annotations

from deriva_ml.provenance.canonical import (
    AssetFact,
    DatasetFact,
    ExecutionFacts,
    FeatureFact,
    canonical_json,
    canonical_record,
    gather_execution,
    provenance_hash,
)

__all__ = [
    "AssetFact",
    "DatasetFact",
    "ExecutionFacts",
    "FeatureFact",
    "canonical_json",
    "canonical_record",
    "gather_execution",
    "provenance_hash",
]
