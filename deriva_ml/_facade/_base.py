"""What every topic class of the facade works through: the ports and services ``DerivaML.__init__`` sets."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deriva_ml.context import Ports
    from deriva_ml.services import Services
    from deriva_ml.services.schema import SchemaService
    from deriva_ml.services.workflows import WorkflowService


class FacadeBase:
    """The state of a ``DerivaML`` handle as its topic classes see it (declared here, set by ``DerivaML``)."""

    _ports: Ports
    _schema: SchemaService
    _workflows: WorkflowService

    if TYPE_CHECKING:

        def _services(self) -> Services: ...
