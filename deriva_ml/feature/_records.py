"""Feature records: a frozen attrs class per feature, generated from the catalog model.

``record_class(feature, resolve_term)`` builds ``<Target>Feature<Name>`` with one keyword-only field per
column of the feature table: the target row's RID, ``Execution``, ``Feature_Name`` (preset), each term
column (a term name or synonym, stored as the term's name), each asset column (an asset RID, or the path
``asset_file_path`` returned, resolved to the asset's RID when the execution uploads), each value column
(checked against its column type), and the read-only ``RCT``/``RID`` a record read from the catalog carries.

A wrong value raises :class:`InvalidFeatureValue` naming the field and what is valid, when the record is
built. No I/O here except through ``resolve_term`` (the schema service's term cache).
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import attrs

from deriva_ml.core import selectors as _selectors
from deriva_ml.core.errors import DerivaMLException, ValidationError
from deriva_ml.core.rid import is_rid
from deriva_ml.feature._model import EXECUTION_COLUMN, FEATURE_NAME_COLUMN, Feature

#: ``resolve_term(vocabulary_schema, vocabulary, name_or_synonym) -> term name`` (raises UnknownTerm).
TermResolver = Callable[[str, str, str], str]

_INT = frozenset({"int2", "int4", "int8"})
_FLOAT = frozenset({"float4", "float8"})
_TEXT = frozenset({"text", "markdown", "longtext", "ermrest_uri", "ermrest_curie", "ermrest_rid"})
_TIME = frozenset({"date", "timestamp", "timestamptz"})


class InvalidFeatureValue(ValidationError):
    """A feature record field got a value it cannot hold (unknown term, wrong type, missing RID...)."""

    def __init__(self, record: str, field: str, message: str) -> None:
        self.record = record
        self.field = field
        super().__init__(f"{record}.{field}: {message}")


class FeatureRecord:
    """Base of every generated feature record class (frozen attrs, keyword-only fields).

    ``feature`` (class attribute) is the :class:`~deriva_ml.feature.Feature` the class was built from. The
    reference package's selectors are here too: ``FeatureRecord.select_newest`` etc.
    """

    feature: ClassVar[Feature | None] = None
    __attrs_attrs__: ClassVar[Any]

    select_newest = staticmethod(_selectors.select_newest)
    select_latest = staticmethod(_selectors.select_latest)
    select_first = staticmethod(_selectors.select_first)
    select_by_execution = staticmethod(_selectors.select_by_execution)
    select_majority_vote = staticmethod(_selectors.select_majority_vote)

    def to_dict(self) -> dict[str, Any]:
        """Every field as a plain dict (``RCT``/``RID`` included)."""
        return {a.name: getattr(self, a.name) for a in type(self).__attrs_attrs__}

    #: The reference's (pydantic) spelling.
    model_dump = to_dict

    def column_values(self) -> dict[str, Any]:
        """The columns this record writes (no ``RCT``/``RID``; paths left as paths)."""
        return {k: v for k, v in self.to_dict().items() if k not in ("RCT", "RID")}

    @classmethod
    def feature_columns(cls) -> tuple[str, ...]:
        return cls.feature.feature_columns if cls.feature else ()

    @classmethod
    def term_columns(cls) -> tuple[str, ...]:
        return cls.feature.term_columns if cls.feature else ()

    @classmethod
    def asset_columns(cls) -> tuple[str, ...]:
        return cls.feature.asset_columns if cls.feature else ()

    @classmethod
    def value_columns(cls) -> tuple[str, ...]:
        return cls.feature.value_columns if cls.feature else ()


def _value_converter(cls_name: str, field: str, col_type: str, nullok: bool) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if value is None:
            if nullok:
                return None
            raise InvalidFeatureValue(cls_name, field, f"a value is required (type {col_type})")
        if col_type in _INT:
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    return int(value)
                raise InvalidFeatureValue(cls_name, field, f"expected an integer ({col_type}), got {value!r}")
            return value
        if col_type in _FLOAT:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidFeatureValue(cls_name, field, f"expected a number ({col_type}), got {value!r}")
            return float(value)
        if col_type == "boolean":
            if not isinstance(value, bool):
                raise InvalidFeatureValue(cls_name, field, f"expected True or False, got {value!r}")
            return value
        if col_type in _TIME:
            if isinstance(value, _dt.date | _dt.datetime):
                return value.isoformat()
            if not isinstance(value, str):
                raise InvalidFeatureValue(cls_name, field, f"expected an ISO {col_type} string, got {value!r}")
            return value
        if col_type in _TEXT:
            if not isinstance(value, str):
                raise InvalidFeatureValue(cls_name, field, f"expected text, got {type(value).__name__} {value!r}")
            return value
        if col_type == "text[]":
            if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
                raise InvalidFeatureValue(cls_name, field, f"expected a list of strings, got {value!r}")
            return tuple(value)
        return value  # json / jsonb: any JSON value

    return convert


def _term_converter(
    cls_name: str, field: str, schema: str, vocab: str, nullok: bool, resolve: TermResolver
) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if value is None:
            if nullok:
                return None
            raise InvalidFeatureValue(cls_name, field, f"a term of {vocab!r} is required")
        if not isinstance(value, str):
            raise InvalidFeatureValue(cls_name, field, f"expected a term name of {vocab!r}, got {value!r}")
        try:
            return resolve(schema, vocab, value)
        except DerivaMLException as exc:
            raise InvalidFeatureValue(cls_name, field, str(exc)) from None

    return convert


def _asset_converter(cls_name: str, field: str, table: str, nullok: bool) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if value is None:
            if nullok:
                return None
            raise InvalidFeatureValue(cls_name, field, f"an asset of {table!r} is required (its RID or output path)")
        if isinstance(value, str) and is_rid(value):
            return value
        if isinstance(value, os.PathLike):
            return Path(value)
        raise InvalidFeatureValue(
            cls_name,
            field,
            f"expected the RID of a {table!r} asset or the path asset_file_path({table!r}, ...) returned, got {value!r}",
        )

    return convert


def _rid_converter(cls_name: str, field: str, required: bool) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if value is None and not required:
            return None
        if not isinstance(value, str) or not is_rid(value):
            raise InvalidFeatureValue(cls_name, field, f"expected a RID such as '1-ABC1', got {value!r}")
        return value

    return convert


def record_class(feature: Feature, resolve_term: TermResolver) -> type[FeatureRecord]:
    """The frozen attrs class of ``feature``'s records (see the module docstring)."""
    target = feature.target_table.name
    cls_name = f"{target}Feature{feature.feature_name}"
    table = feature.feature_table
    fields: dict[str, Any] = {
        target: attrs.field(converter=_rid_converter(cls_name, target, True)),
        EXECUTION_COLUMN: attrs.field(default=None, converter=_rid_converter(cls_name, EXECUTION_COLUMN, False)),
        FEATURE_NAME_COLUMN: attrs.field(default=feature.feature_name, validator=_is_feature_name(cls_name, feature)),
    }
    for col, schema, vocab in feature.term_tables:
        nullok = _nullok(table.column(col))
        fields[col] = attrs.field(
            default=None if nullok else attrs.NOTHING,
            converter=_term_converter(cls_name, col, schema, vocab, nullok, resolve_term),
        )
    for col, _schema, asset in feature.asset_tables:
        nullok = _nullok(table.column(col))
        fields[col] = attrs.field(
            default=None if nullok else attrs.NOTHING, converter=_asset_converter(cls_name, col, asset, nullok)
        )
    for col in feature.value_columns:
        cd = table.column(col)
        nullok = _nullok(cd)
        fields[col] = attrs.field(
            default=None if nullok else attrs.NOTHING,
            converter=_value_converter(cls_name, col, cd.type if cd else "text", nullok),
        )
    fields["RCT"] = attrs.field(default=None)
    fields["RID"] = attrs.field(default=None)
    cls: type[FeatureRecord] = attrs.make_class(
        cls_name, fields, bases=(FeatureRecord,), frozen=True, kw_only=True, slots=True
    )
    cls.feature = feature
    cls.__doc__ = (
        f"A value of feature {feature.feature_name!r} of {target!r} (table {table.name!r}); "
        f"terms: {list(feature.term_columns)}, assets: {list(feature.asset_columns)}, "
        f"values: {list(feature.value_columns)}."
    )
    return cls


def _nullok(cd: Any) -> bool:
    return bool(cd is None or cd.nullok)


def _is_feature_name(cls_name: str, feature: Feature) -> Callable[[Any, Any, Any], None]:
    def check(_inst: Any, _attr: Any, value: Any) -> None:
        if value != feature.feature_name:
            raise InvalidFeatureValue(
                cls_name, FEATURE_NAME_COLUMN, f"must be {feature.feature_name!r} (this class's feature), got {value!r}"
            )

    return check


def build_record(cls: type[FeatureRecord], row: Mapping[str, Any]) -> FeatureRecord:
    """A record of ``cls`` from a catalog row (columns the class does not know are ignored)."""
    names = {a.name for a in cls.__attrs_attrs__}
    return cls(**{k: v for k, v in row.items() if k in names})
