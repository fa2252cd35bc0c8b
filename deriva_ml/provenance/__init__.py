"""Provenance of executions: the canonical record and its hash, diffs, and standard exports.

Heavy libraries (``rocrate``, ``prov``) are imported only inside the export functions.
"""

from __future__ import annotations

from typing import Any

from deriva_ml.provenance.canonical import canonical_json, canonical_record, provenance_hash
from deriva_ml.provenance.facts import AssetFact, DatasetFact, ExecutionFacts, FeatureFact
from deriva_ml.provenance.gather import gather_execution


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


__all__ = ["AssetFact", "DatasetFact", "ExecutionFacts", "FeatureFact"]  # the facts (provenance.facts)
__all__ += ["canonical_json", "canonical_record", "gather_execution", "provenance_hash"]
__all__ += ["diff_records", "export_prov", "export_rocrate"]  # imported on first call
