"""Dataset records: the frozen facts a dataset handle and a bag report (its row, its version history).

Shared by the catalog side (``_datasets.py``, ``_versions.py``) and the bag side (``_bag.py``): a
``Dataset_Version`` row becomes a :class:`DatasetHistory` in one place, :func:`history_from_rows`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from deriva_ml.core.records import DatasetVersion
from deriva_ml.core.rid import RID


@attrs.frozen
class DatasetRecord:
    """A dataset as the catalog knows it (a snapshot of its row, types and current version)."""

    dataset_rid: RID
    description: str = ""
    dataset_types: tuple[str, ...] = ()
    current_version: DatasetVersion | None = None
    deleted: bool = False


@attrs.frozen(order=False)
class DatasetHistory:
    """One ``Dataset_Version`` row: a version, when it was made (snapshot), by which execution, why."""

    dataset_rid: RID
    dataset_version: DatasetVersion
    version_rid: RID
    description: str = ""
    execution_rid: RID | None = None
    snapshot: str | None = None
    minid: str | None = None
    timestamp: str | None = None


def history_from_rows(dataset_rid: RID, rows: Iterable[Mapping[str, Any]]) -> list[DatasetHistory]:
    """The :class:`DatasetHistory` of ``dataset_rid`` from its ``Dataset_Version`` rows, oldest first."""
    out = [
        DatasetHistory(
            dataset_rid=dataset_rid,
            dataset_version=DatasetVersion.parse(r["Version"]),
            version_rid=RID(r["RID"]),
            description=r.get("Description") or "",
            execution_rid=r.get("Execution"),
            snapshot=r.get("Snapshot"),
            minid=r.get("Minid"),
            timestamp=r.get("RCT"),
        )
        for r in rows
    ]
    return sorted(out, key=lambda h: h.dataset_version)


__all__ = ["DatasetHistory", "DatasetRecord", "history_from_rows"]
