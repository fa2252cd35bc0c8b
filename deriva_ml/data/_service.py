"""Domain data and catalog reads for one handle: insert, query, update, delete, tables as dicts or data
frames, RID look-ups, snapshots, Chaise and citation URLs.

Takes the :class:`~deriva_ml.context.Ports` and the :class:`~deriva_ml.services.schema.SchemaService`,
never the facade. Every write is planned by a pure function (``_plans.py``) and applied in one batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from deriva_ml.context import Ports
from deriva_ml.core.errors import CatalogError, DerivaMLException, RIDNotFound, ValidationError
from deriva_ml.core.filters import PathQuery, Step, as_filter
from deriva_ml.core.rid import RID, parse_rid, split_snapshot
from deriva_ml.core.schema_defs import TableDef
from deriva_ml.data._plans import plan_delete, plan_insert, plan_update
from deriva_ml.data._query import Query, path_catalog
from deriva_ml.services.schema import SchemaService


class EmbeddedCatalogOnly(DerivaMLException):
    """A call that needs a live DERIVA server (Chaise, citations, datapath) was made on the embedded catalog."""


class DataService:
    """The data API of one handle (``ml.insert``, ``ml.query``, ``ml.retrieve_rid``...)."""

    def __init__(self, ports: Ports, schema: SchemaService) -> None:
        self.ports = ports
        self.schema = schema

    # ------------------------------------------------------------------------------------- tables

    def table(self, table: str | TableDef, schema: str | None = None) -> TableDef:
        return table if isinstance(table, TableDef) else self.schema.table(table, schema)

    def query(self, table: str | TableDef, *, schema: str | None = None, snapshot: str | None = None) -> Query:
        t = self.table(table, schema)
        return Query(
            catalog=self.ports.catalog,
            model=self.ports.catalog.model(),
            steps=(Step(t.schema, t.name),),
            snapshot=snapshot,
            resolve=self.table,
        )

    def insert(
        self, table: str | TableDef, rows: Iterable[Mapping[str, Any]] | Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """Insert rows (one batch); returns them as stored, with RID and system columns."""
        batch = plan_insert(self.table(table), rows)
        if not batch.effects:
            return []
        result = self.ports.catalog.apply(batch)
        return [dict(r) for r in result.inserted[0]]

    def update(self, table: str | TableDef, rows: Iterable[Mapping[str, Any]] | Mapping[str, Any]) -> int:
        """Set columns of rows named by RID (one batch); a RID that is no row of the table raises
        :class:`RIDNotFound` and nothing is changed on the embedded catalog. Returns the number of rows."""
        batch = plan_update(self.table(table), rows)
        if not batch.effects:
            return 0
        self.ports.catalog.apply(batch)
        return len(batch.effects[0].rows)  # type: ignore[union-attr]

    def delete(self, table: str | TableDef, rids_or_filter: Any) -> int:
        """Delete rows by RIDs, or every row matching a filter (its RIDs are read first: one request).
        Returns how many rows were named (a RID already gone is not an error)."""
        t = self.table(table)
        if isinstance(rids_or_filter, str):
            rids: list[str] = [rids_or_filter]
        elif isinstance(rids_or_filter, list | tuple | set | frozenset):
            rids = [str(r) for r in rids_or_filter]
        else:
            f = as_filter(rids_or_filter)
            if f is None:
                raise ValidationError(f"delete from {t.qualified}: pass RIDs or a filter (None would delete every row)")
            rows = path_catalog(self.ports.catalog).select_path(
                PathQuery((Step(t.schema, t.name, f),), columns=("RID",))
            )
            rids = [r["RID"] for r in rows]
        batch = plan_delete(t, rids)
        if batch.effects:
            self.ports.catalog.apply(batch)
        return len(batch.effects[0].values) if batch.effects else 0  # type: ignore[union-attr]

    def get_table_as_dict(self, table: str | TableDef, *, schema: str | None = None) -> list[dict[str, Any]]:
        """Every row of a table, in RID order (one request)."""
        return self.query(table, schema=schema).fetch()

    def get_table_as_dataframe(self, table: str | TableDef, *, schema: str | None = None) -> Any:
        """Every row of a table as a pandas DataFrame (columns in the table's order; needs the ``pandas`` extra)."""
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise DerivaMLException(
                "get_table_as_dataframe needs pandas: pip install 'deriva-ml[pandas]' (or use get_table_as_dict)"
            ) from e
        t = self.table(table, schema)
        return pd.DataFrame(self.query(t).fetch(), columns=list(t.column_names))

    # ---------------------------------------------------------------------------------------- RIDs

    def retrieve_rid(self, rid: str) -> dict[str, Any]:
        """The row with this RID, whatever its table (``RID@snapshot`` reads it at that snapshot)."""
        rid = parse_rid(rid)
        base, snap = split_snapshot(RID(rid))
        schema, table = self.schema.resolve_rid(rid)
        rows = self.ports.catalog.query(schema, table, {"RID": base}, snapshot=snap)
        if not rows:
            raise RIDNotFound(rid, f"{schema}:{table}")
        return rows[0]

    def resolve_rids(
        self, rids: Iterable[str], *, candidate_tables: Sequence[str | TableDef] | None = None
    ) -> dict[str, tuple[str, str]]:
        """``{rid: (schema, table)}`` for many RIDs. Embedded: local look-ups, no request. ERMrest (whose
        ``/entity_rid/`` takes one RID): per RID or one ``RID=a;RID=b...`` query per candidate table,
        whichever is fewer requests — min(n, tables), whatever n. A RID found nowhere raises RIDNotFound."""
        wanted = list(dict.fromkeys(parse_rid(r) for r in rids))
        if not wanted:
            return {}
        from deriva_ml.catalog.ermrest import ErmrestCatalog

        tables = (
            [self.table(t) for t in candidate_tables]
            if candidate_tables is not None
            else list(self.ports.catalog.model().tables)
        )
        out: dict[str, tuple[str, str]] = {}
        if not isinstance(self.ports.catalog, ErmrestCatalog) or len(wanted) <= len(tables):
            for r in wanted:
                found = self.schema.resolve_rid(r)
                if candidate_tables is not None and found not in {(t.schema, t.name) for t in tables}:
                    raise RIDNotFound(r, ", ".join(t.qualified for t in tables))
                out[r] = found
            return out
        for t in tables:
            left = [r for r in wanted if r not in out]
            if not left:
                break
            try:
                rows = self.ports.catalog.query(t.schema, t.name, {"RID": left}, columns=["RID"])
            except CatalogError:
                continue  # a table this user may not read
            for row in rows:
                out[row["RID"]] = (t.schema, t.name)
        missing = [r for r in wanted if r not in out]
        if missing:
            raise RIDNotFound(missing[0], ", ".join(t.qualified for t in tables) if candidate_tables else None)
        return out

    # ------------------------------------------------------------------------------------ live only

    def _live(self, what: str) -> tuple[str, str]:
        from deriva_ml.catalog.ermrest import ErmrestCatalog

        cat = getattr(self.ports.catalog, "inner", self.ports.catalog)
        if self.ports.host.embedded or not isinstance(cat, ErmrestCatalog):
            raise EmbeddedCatalogOnly(
                f"{what} needs a live DERIVA server (host {self.ports.host.host_name!r} is the embedded catalog); "
                "the embedded catalog has no Chaise and no resolvable /id/ URLs — use retrieve_rid(rid) there"
            )
        return cat.scheme, cat.hostname

    def chaise_url(self, table_or_rid: str) -> str:
        """The Chaise page of a row (a RID) or of a table (its name): ``https://host/chaise/record/#<catalog>/
        <schema>:<table>/RID=<rid>`` / ``.../chaise/recordset/#<catalog>/<schema>:<table>``. Live only."""
        scheme, host = self._live("chaise_url")
        cid = quote(self.ports.host.catalog_id, safe="")
        try:
            t = self.schema.table(table_or_rid)
        except DerivaMLException:
            t = None
        if t is not None:
            return f"{scheme}://{host}/chaise/recordset/#{cid}/{quote(t.schema)}:{quote(t.name)}"
        rid = parse_rid(table_or_rid)
        schema, table = self.schema.resolve_rid(rid)
        return f"{scheme}://{host}/chaise/record/#{cid}/{quote(schema)}:{quote(table)}/RID={rid}"

    def cite(self, rid: str, *, current: bool = False) -> str:
        """A permanent citation URL of a row: ``https://host/id/<catalog>/<RID>@<snaptime>`` (the row as it is
        now, forever; ``current=True`` leaves out the snapshot). The RID must exist. Live only."""
        scheme, host = self._live("cite")
        rid = parse_rid(rid)
        base, snap = split_snapshot(RID(rid))
        self.schema.resolve_rid(base)
        cid = self.ports.host.catalog_id
        if current:
            return f"{scheme}://{host}/id/{cid}/{base}"
        return f"{scheme}://{host}/id/{cid}/{base}@{snap or self.ports.catalog.snapshot()}"

    def path_builder(self) -> Any:
        """deriva-py's datapath ``PathBuilder`` on the live catalog (an escape hatch; built once). Live only."""
        from deriva_ml.catalog.ermrest import ErmrestCatalog

        self._live("pathBuilder")
        cat = getattr(self.ports.catalog, "inner", self.ports.catalog)
        assert isinstance(cat, ErmrestCatalog)
        return cat.path_builder()
