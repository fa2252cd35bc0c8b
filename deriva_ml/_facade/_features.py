"""The facade's feature calls: create features, find them, read their values."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from deriva_ml._facade._base import FacadeBase
from deriva_ml.core.schema_defs import ColumnDef, TableDef


class FeatureFacade(FacadeBase):
    """``DerivaML``'s calls on features (``feature._service.FeatureService``, see docs/features.md)."""

    def _feature_service(self) -> Any:
        from deriva_ml.feature._service import FeatureService

        svc = self.__dict__.get("_features")
        if svc is None or svc.ports is not self._ports or svc.schema is not self._schema:
            svc = self.__dict__["_features"] = FeatureService(self._ports, self._schema)
        return svc

    def create_feature(
        self,
        target_table: str | TableDef,
        feature_name: str,
        terms: Sequence[str | TableDef] | None = None,
        assets: Sequence[str | TableDef] | None = None,
        metadata: Sequence[ColumnDef | str | TableDef] | None = None,
        optional: Sequence[str] | None = None,
        comment: str = "",
    ) -> Any:
        """Create the feature ``feature_name`` of ``target_table`` and return its record class (see docs/features.md)."""
        return self._feature_service().create_feature(
            target_table, feature_name, terms or (), assets or (), metadata or (), optional or (), comment
        )

    def feature_record_class(self, table: str | TableDef, feature_name: str) -> Any:
        """The frozen attrs record class of a feature (validated fields, generated from the catalog model)."""
        return self._feature_service().feature_record_class(table, feature_name)

    def find_features(self, table: str | TableDef | None = None) -> list[Any]:
        """Every feature (of ``table`` when given), as :class:`~deriva_ml.feature.Feature` descriptions."""
        return self._feature_service().find_features(table)  # type: ignore[no-any-return]

    def lookup_feature(self, table: str | TableDef, feature_name: str) -> Any:
        """The :class:`~deriva_ml.feature.Feature` ``feature_name`` of ``table``."""
        return self._feature_service().lookup_feature(table, feature_name)

    def list_feature_values(
        self, table: str | TableDef, feature_name: str, selector: Callable[..., Any] | None = None, **kwargs: Any
    ) -> list[Any]:
        """A feature's values as records (one query); ``selector`` keeps one per target row."""
        return self._feature_service().list_feature_values(table, feature_name, selector, **kwargs)  # type: ignore[no-any-return]

    def feature_values(
        self, table: str | TableDef, feature_name: str, selector: Callable[..., Any] | None = None, **kwargs: Any
    ) -> list[Any]:
        """The reference's newer name of :meth:`list_feature_values`."""
        return self.list_feature_values(table, feature_name, selector, **kwargs)

    def fetch_table_features(
        self, table: str | TableDef, feature_name: str | None = None, selector: Callable[..., Any] | None = None
    ) -> dict[str, list[Any]]:
        """Every feature of ``table`` with its values, by feature name."""
        return self._feature_service().fetch_table_features(table, feature_name, selector)  # type: ignore[no-any-return]
