"""Dataset versions: reading a dataset's versions and making a new one (shell code; plans in ``_plans.py``).

A version is a ``Dataset_Version`` row carrying the catalog snapshot taken once the row and the
``Dataset.Version`` pointer exist (:func:`record_snapshot`), so reading at that snapshot shows the dataset
at this version. See ``docs/datasets.md``.
"""

from __future__ import annotations

from deriva_ml._log import get_logger
from deriva_ml.core.records import DatasetVersion
from deriva_ml.core.rid import RID, parse_rid
from deriva_ml.dataset._plans import INITIAL_VERSION, plan_new_version, plan_version_snapshot
from deriva_ml.dataset._reading import _resolve_version, _version_rows
from deriva_ml.dataset._records import DatasetHistory, history_from_rows
from deriva_ml.services import Shell


def current_version(ctx: Shell, dataset_rid: str) -> DatasetVersion:
    """The current (highest) version of a dataset. One request."""
    v, _ = _resolve_version(ctx, parse_rid(dataset_rid, "dataset_rid"), None)
    return v


def dataset_history(ctx: Shell, dataset_rid: str) -> list[DatasetHistory]:
    """Every version of a dataset, oldest first. One request."""
    rid = parse_rid(dataset_rid, "dataset_rid")
    return history_from_rows(rid, _version_rows(ctx, rid))


def increment_dataset_version(
    ctx: Shell,
    dataset_rid: str,
    component: str,
    description: str = "",
    *,
    execution_rid: str | None = None,
) -> DatasetVersion:
    """Make a new version (``component`` is major, minor or patch) that freezes the dataset as it is now.

    Requests: one to read the versions, one batch (the Dataset_Version row and the ``Dataset.Version``
    pointer), one snapshot read and one update recording it (:func:`record_snapshot`). A concurrent
    bump to the same number raises ConflictError (the (Dataset, Version) key) and changes nothing.
    """
    rid = parse_rid(dataset_rid, "dataset_rid")
    INITIAL_VERSION.bump(str(getattr(component, "value", component)))  # validate before any I/O
    exe = parse_rid(execution_rid, "execution_rid") if execution_rid else None
    current, _ = _resolve_version(ctx, rid, None)
    new = current.bump(str(getattr(component, "value", component)))
    result = ctx.ports.catalog.apply(plan_new_version(rid, new, description or f"{component} version bump", exe))
    snapshot = record_snapshot(ctx, result.rids["version"])
    get_logger("deriva_ml.dataset").info(
        "dataset version", dataset_rid=rid, version=str(new), previous=str(current), snapshot=snapshot
    )
    return new


def record_snapshot(ctx: Shell, version_rid: RID) -> str:
    """Take the version's snapshot now that its Dataset_Version row and the ``Dataset.Version`` pointer
    exist, and write it into the row (two requests). Read at that snapshot, the catalog shows the
    dataset at this version (a bag of 0.3.0 says 0.3.0). The reference package does the same (insert the
    version rows, read ``snaptime``, update ``Snapshot``), though before moving the pointer; older rows
    whose snapshot precedes their own version row are read as they are (see docs/datasets.md)."""
    snapshot = ctx.ports.catalog.snapshot()
    ctx.ports.catalog.apply(plan_version_snapshot(version_rid, snapshot))
    return snapshot


__all__ = ["current_version", "dataset_history", "increment_dataset_version", "record_snapshot"]
