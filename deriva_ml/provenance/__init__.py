"""Provenance of executions: the canonical record and its hash, diffs, and standard exports.

Heavy libraries (``rocrate``, ``prov``) are imported only inside the export functions.
"""

from __future__ import annotations

from typing import Any

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


def export_rocrate(*args: Any, **kwargs: Any) -> Any:
    """See :func:`deriva_ml.provenance.export_rocrate.export_rocrate` (imported lazily: needs ``rocrate``)."""
    from deriva_ml.provenance.export_rocrate import export_rocrate as run

    return run(*args, **kwargs)


def export_prov(*args: Any, **kwargs: Any) -> Any:
    """See :func:`deriva_ml.provenance.export_prov.export_prov` (imported lazily: needs ``prov``)."""
    from deriva_ml.provenance.export_prov import export_prov as run

    return run(*args, **kwargs)


def diff_records(*args: Any, **kwargs: Any) -> Any:
    """See :func:`deriva_ml.provenance.diff.diff_records`."""
    from deriva_ml.provenance.diff import diff_records as run

    return run(*args, **kwargs)


__all__ = [
    "AssetFact",
    "DatasetFact",
    "ExecutionFacts",
    "FeatureFact",
    "canonical_json",
    "canonical_record",
    "diff_records",
    "export_prov",
    "export_rocrate",
    "gather_execution",
    "provenance_hash",
]
