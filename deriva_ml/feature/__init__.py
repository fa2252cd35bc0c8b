"""Features: values attached to rows of a table by executions (the reference package's annotations).

See ``docs/features.md`` for the table layout and ``docs/guide/features.md`` for examples.
"""

from deriva_ml.core.selectors import (
    select_by_execution,
    select_first,
    select_latest,
    select_majority_vote,
    select_newest,
)
from deriva_ml.feature._model import (
    Feature,
    UnknownFeature,
    feature_of,
    feature_table_name,
    feature_tables_for,
    find_features,
    lookup_feature,
    plan_feature_table,
)
from deriva_ml.feature._records import FeatureRecord, InvalidFeatureValue, build_record, record_class

__all__ = [
    "Feature",
    "FeatureRecord",
    "InvalidFeatureValue",
    "UnknownFeature",
    "build_record",
    "feature_of",
    "feature_table_name",
    "feature_tables_for",
    "find_features",
    "lookup_feature",
    "plan_feature_table",
    "record_class",
    "select_by_execution",
    "select_first",
    "select_latest",
    "select_majority_vote",
    "select_newest",
]
