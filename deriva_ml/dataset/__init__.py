"""Datasets: versioned, nestable collections of catalog rows, and their BDBags.

``ml.create_dataset(...)`` returns a :class:`Dataset` handle; ``ml.download_dataset_bag(spec)`` a
:class:`DatasetBag`. The real homes are ``_datasets.py`` (catalog side), ``_bag.py`` (bags) and
``_plans.py`` (pure planning). ``DatasetSpec``/``DatasetVersion`` live in ``aux_classes`` (the
reference package's import path).
"""

from deriva_ml.core.records import DatasetSpec, DatasetVersion
from deriva_ml.dataset._bag import BagError, DatasetBag
from deriva_ml.dataset._datasets import Dataset, DatasetHistory, DatasetRecord

__all__ = [
    "BagError",
    "Dataset",
    "DatasetBag",
    "DatasetHistory",
    "DatasetRecord",
    "DatasetSpec",
    "DatasetVersion",
]
