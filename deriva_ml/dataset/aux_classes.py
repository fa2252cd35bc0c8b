"""Dataset records: ``from deriva_ml.dataset.aux_classes import DatasetSpec``."""

from deriva_ml.core.records import DatasetSpec, DatasetVersion

__all__ = ["DatasetSpec", "DatasetVersion"]
