"""The facade's domain-data calls: query, insert, update, delete rows; read tables and RIDs; catalog URLs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from deriva_ml._facade._base import FacadeBase


class DataFacade(FacadeBase):
    """``DerivaML``'s calls on domain rows and catalog reads (``data._service.DataService``)."""

    def _data(self) -> Any:
        from deriva_ml.data._service import DataService

        return DataService(self._ports, self._schema)

    def query(self, table: str, *, schema: str | None = None) -> Any:
        """A query builder over ``table`` (``.where(col("Age") > 3).select("Name").linked("Image").fetch()``)."""
        return self._data().query(table, schema=schema)

    def insert(self, table: str, rows: Any) -> list[dict[str, Any]]:
        """Insert rows into a domain table (one batch); returns them with their RIDs."""
        return self._data().insert(table, rows)  # type: ignore[no-any-return]

    def update(self, table: str, rows: Any) -> int:
        """Set columns of rows named by RID (one batch)."""
        return self._data().update(table, rows)  # type: ignore[no-any-return]

    def delete(self, table: str, rids_or_filter: Any) -> int:
        """Delete rows of a domain table by RIDs or by a filter."""
        return self._data().delete(table, rids_or_filter)  # type: ignore[no-any-return]

    def get_table_as_dict(self, table: str, *, schema: str | None = None) -> list[dict[str, Any]]:
        return self._data().get_table_as_dict(table, schema=schema)  # type: ignore[no-any-return]

    def get_table_as_dataframe(self, table: str, *, schema: str | None = None) -> Any:
        """The table as a pandas DataFrame (the ``pandas`` extra)."""
        return self._data().get_table_as_dataframe(table, schema=schema)

    def retrieve_rid(self, rid: str) -> dict[str, Any]:
        """The row with this RID, whatever its table."""
        return self._data().retrieve_rid(rid)  # type: ignore[no-any-return]

    def resolve_rids(self, rids: Iterable[str], *, candidate_tables: Sequence[str] | None = None) -> dict[str, Any]:
        """``{rid: (schema, table)}`` for many RIDs (at most min(n, tables) requests on ERMrest)."""
        return self._data().resolve_rids(rids, candidate_tables=candidate_tables)  # type: ignore[no-any-return]

    def chaise_url(self, table_or_rid: str) -> str:
        """The Chaise URL of a row or table (live server only)."""
        return self._data().chaise_url(table_or_rid)  # type: ignore[no-any-return]

    def cite(self, rid: str, *, current: bool = False) -> str:
        """``https://host/id/<catalog>/<RID>@<snaptime>``: a permanent citation URL (live server only)."""
        return self._data().cite(rid, current=current)  # type: ignore[no-any-return]

    def pathBuilder(self) -> Any:
        """deriva-py's datapath on the live catalog (escape hatch; live server only)."""
        return self._data().path_builder()
