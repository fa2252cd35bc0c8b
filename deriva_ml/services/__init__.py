"""Services shared by datasets, executions and the facade, built on :class:`deriva_ml.context.Ports`.

:class:`Services` is what datasets and executions are handed (built by the facade, never the facade
itself): the ports, the schema service, the workflow service, what the handle remembers of stored metadata
objects, and how to fetch a dataset bag. Dataset functions accept any :class:`Shell` (ports and schema
service), which a ``Services`` value is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from deriva_ml.context import Ports
from deriva_ml.services.schema import SchemaService

if TYPE_CHECKING:
    from deriva_ml.core.records import DatasetSpec
    from deriva_ml.core.rid import RID
    from deriva_ml.services.workflows import WorkflowService


class Shell(Protocol):
    """What dataset code reaches the catalog through: ports, the schema service and how to fetch a bag."""

    @property
    def ports(self) -> Ports: ...

    @property
    def _schema(self) -> SchemaService: ...

    def download_dataset_bag(self, dataset: DatasetSpec) -> Any: ...


#: (table, md5, filename) -> (url, length, asset row RID) of metadata objects a handle stored and cataloged
StoredObjects = dict[tuple[str, str, str], tuple[str, int, "RID"]]


@attrs.frozen
class Services:
    """Ports and services of one handle, as executions and datasets use them."""

    ports: Ports
    _schema: SchemaService = attrs.field(alias="schema")
    workflows: WorkflowService
    #: remembered across executions of the handle (content-addressed names; a stale RID is forgotten)
    stored_objects: StoredObjects
    #: a dataset bag for a spec (the bag builder still takes the facade; see dataset/_bag.py)
    download_bag: Callable[[DatasetSpec], Any]

    @property
    def schema(self) -> SchemaService:
        return self._schema

    def download_dataset_bag(self, dataset: DatasetSpec) -> Any:
        return self.download_bag(dataset)


__all__ = ["SchemaService", "Services", "Shell", "StoredObjects"]
