"""The facts a canonical provenance record is made from (frozen records, filled by
:func:`deriva_ml.provenance.gather.gather_execution` and read by :func:`deriva_ml.provenance.canonical_record`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from deriva_ml.core.definitions import MLAsset
from deriva_ml.core.fields import as_tuple

__all__ = ["METRICS_FILE", "AssetFact", "DatasetFact", "ExecutionFacts", "FeatureFact", "is_metadata"]

#: Asset type of the training-metric log uploaded by ``exe.log_metric`` (branch metrics).
METRICS_FILE = "Metrics_File"


def _frozen(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


def _opt_frozen(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return None if value is None else _frozen(value)


def _sorted_names(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(value))


def _frozen_rows(value: Iterable[Mapping[str, Any]]) -> tuple[Mapping[str, Any], ...]:
    return tuple(_frozen(x) for x in value)


@attrs.frozen
class AssetFact:
    """One asset linked to an execution (input or output), as the catalog holds it."""

    table: str
    rid: str
    filename: str
    md5: str
    length: int
    url: str
    role: str
    types: tuple[str, ...] = attrs.field(default=(), converter=_sorted_names)


@attrs.frozen
class DatasetFact:
    """One dataset linked to an execution, with the version used (inputs) or made (outputs)."""

    rid: str
    role: str
    version: str | None
    snapshot: str | None
    description: str
    types: tuple[str, ...] = attrs.field(default=(), converter=_sorted_names)


@attrs.frozen
class FeatureFact:
    """Feature values written by an execution: ``values`` are rows already reduced to content identities."""

    table: str
    values: tuple[Mapping[str, Any], ...] = attrs.field(converter=_frozen_rows)


@attrs.frozen
class ExecutionFacts:
    """Everything the canonical record is made from: catalog rows and the two metadata files, parsed."""

    rid: str
    execution: Mapping[str, Any] = attrs.field(converter=_frozen)
    workflow: Mapping[str, Any] | None = attrs.field(converter=_opt_frozen)
    datasets: tuple[DatasetFact, ...] = attrs.field(converter=as_tuple)
    assets: tuple[AssetFact, ...] = attrs.field(converter=as_tuple)
    #: ``configuration.json`` as uploaded (None when the execution has none).
    configuration: Mapping[str, Any] | None = attrs.field(default=None)
    #: The runtime-environment snapshot as uploaded (None when absent).
    environment: Mapping[str, Any] | None = attrs.field(default=None)
    features: tuple[FeatureFact, ...] = attrs.field(default=(), converter=as_tuple)
    metrics: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen)
    #: ``(sequence, facts)`` of nested children, gathered only with ``recurse=True``.
    children: tuple[tuple[int | None, ExecutionFacts], ...] = attrs.field(default=(), converter=as_tuple)
    #: ``(sequence, rid)`` of every nested child (also without ``recurse``).
    child_rids: tuple[tuple[int | None, str], ...] = attrs.field(default=(), converter=as_tuple)
    recursed: bool = False


def is_metadata(a: AssetFact) -> bool:
    """Whether ``a`` is an ``Execution_Metadata`` file (configuration, environment, logs...)."""
    return a.table == MLAsset.execution_metadata.value
