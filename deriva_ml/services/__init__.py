"""Services shared by datasets, executions and the facade, built on :class:`deriva_ml.context.Ports`."""

from deriva_ml.services.schema import SchemaService

__all__ = ["SchemaService"]
