"""The facade's dataset calls: create, find, version, fill, delete datasets and download their bags."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deriva_ml._facade._base import FacadeBase
from deriva_ml.core.records import DatasetSpec
from deriva_ml.core.rid import RID
from deriva_ml.core.schema_defs import TableDef


class DatasetFacade(FacadeBase):
    """``DerivaML``'s calls on datasets (``dataset._datasets``, ``dataset._manage``, ``dataset._bag``)."""

    def create_dataset(
        self,
        dataset_types: str | Sequence[str] | None = None,
        description: str = "",
        version: Any = None,
        *,
        execution_rid: str | None = None,
    ) -> Any:
        from deriva_ml.dataset import _datasets

        return _datasets.create_dataset(
            self._services(), dataset_types, description, version, execution_rid=execution_rid
        )

    def lookup_dataset(self, dataset_rid: str) -> Any:
        from deriva_ml.dataset import _datasets

        return _datasets.lookup_dataset(self._services(), dataset_rid)

    def find_datasets(self, *, deleted: bool = False) -> list[Any]:
        """Every dataset (``deleted=True`` includes ones marked Deleted)."""
        from deriva_ml.dataset import _datasets

        return _datasets.find_datasets(self._services(), deleted=deleted)

    def add_dataset_members(self, dataset_rid: str, members: Any, **kwargs: Any) -> Any:
        from deriva_ml.dataset import _datasets

        return _datasets.add_dataset_members(self._services(), dataset_rid, members, **kwargs)

    def list_dataset_members(
        self, dataset_rid: str, version: Any = None, **kwargs: Any
    ) -> dict[str, list[dict[str, Any]]]:
        from deriva_ml.dataset import _datasets

        return _datasets.list_dataset_members(self._services(), dataset_rid, version, **kwargs)

    def list_dataset_children(self, dataset_rid: str, **kwargs: Any) -> list[Any]:
        from deriva_ml.dataset import _datasets

        return _datasets.list_dataset_children(self._services(), dataset_rid, **kwargs)

    def list_dataset_parents(self, dataset_rid: str, **kwargs: Any) -> list[Any]:
        """Datasets that contain this one (``recurse=True`` for all ancestors)."""
        from deriva_ml.dataset import _datasets

        return _datasets.list_dataset_parents(self._services(), dataset_rid, **kwargs)

    def increment_dataset_version(self, dataset_rid: str, component: str, description: str = "", **kwargs: Any) -> Any:
        from deriva_ml.dataset import _datasets

        return _datasets.increment_dataset_version(self._services(), dataset_rid, component, description, **kwargs)

    def dataset_version(self, dataset_rid: str) -> Any:
        """The current version of a dataset."""
        from deriva_ml.dataset import _datasets

        return _datasets.current_version(self._services(), dataset_rid)

    def dataset_history(self, dataset_rid: str) -> list[Any]:
        from deriva_ml.dataset import _datasets

        return _datasets.dataset_history(self._services(), dataset_rid)

    def download_dataset_bag(self, dataset: DatasetSpec | str) -> Any:
        """A BDBag of a dataset version (the current one unless the spec names one)."""
        from deriva_ml.dataset import _bag

        spec = dataset if isinstance(dataset, DatasetSpec) else DatasetSpec(rid=dataset)
        return _bag.download_dataset_bag(self, spec)

    def delete_dataset(self, dataset_rid: str, recurse: bool = False) -> list[RID]:
        """Mark a dataset Deleted (and its nested datasets with ``recurse``); returns the RIDs marked."""
        from deriva_ml.dataset import _manage

        return _manage.delete_dataset(self._ports, self._schema, dataset_rid, recurse=recurse)

    def delete_dataset_members(self, dataset_rid: str, members: Any, **kwargs: Any) -> Any:
        """Remove members and bump the minor version (older versions keep them)."""
        from deriva_ml.dataset import _manage

        removed = _manage.delete_dataset_members(self._ports, self._schema, dataset_rid, members)
        if removed:
            kwargs.setdefault("description", f"removed {removed} member(s)")
            return self.increment_dataset_version(dataset_rid, "minor", **kwargs)
        return None

    def add_dataset_type(self, dataset_rid: str, dataset_type: str) -> None:
        from deriva_ml.dataset import _manage

        _manage.add_dataset_types(self._ports, self._schema, dataset_rid, [dataset_type])

    def remove_dataset_type(self, dataset_rid: str, dataset_type: str) -> None:
        from deriva_ml.dataset import _manage

        _manage.remove_dataset_types(self._ports, self._schema, dataset_rid, [dataset_type])

    def list_dataset_element_types(self) -> list[TableDef]:
        """Tables whose rows can be dataset members (those with a ``Dataset_<Table>`` association)."""
        from deriva_ml.dataset import _manage

        return _manage.list_dataset_element_types(self._ports)

    def add_dataset_element_type(self, table: str) -> TableDef:
        """Let rows of ``table`` be dataset members (creates the ``Dataset_<Table>`` association)."""
        from deriva_ml.dataset import _manage

        return _manage.add_dataset_element_type(self._ports, self._schema, table)

    def add_files(
        self,
        files: Any,
        *,
        dataset_types: str | Sequence[str] | None = None,
        description: str = "",
        file_types: Sequence[str] = (),
        execution_rid: str | None = None,
    ) -> Any:
        """Catalog files (local paths or FileSpecs) in the File table and return a new dataset holding them
        (types ``dataset_types``, default ``File``), as the reference's ``add_files`` does."""
        from deriva_ml.data import _assets

        rids = _assets.add_files(self._ports, self._schema, files, file_types=file_types, description=description)
        if not rids:
            return None
        ds = self.create_dataset(
            dataset_types if dataset_types is not None else ["File"], description, execution_rid=execution_rid
        )
        self.add_dataset_members(ds.dataset_rid, {"File": rids}, execution_rid=execution_rid)
        return self.lookup_dataset(ds.dataset_rid)
