"""The walk of a bag build (shell): read the plan's rows page by page and stream them to the writer.

Member links, member rows (joined on the server), feature values of members, then the foreign-key walk,
level by level. Every read is paged (:mod:`deriva_ml.catalog.paging`, RID keyset order, ``page_size``
rows a page) and each page is written (CSV rows, ``fetch.txt`` entries) before the next is read, so the
rows in memory are one page's, whatever the number of members. What is kept across pages: one RID per
written row (the writer's de-duplication), the values of key columns other than RID that a foreign key
reaches (vocabulary names, small), and the foreign-key values the newest rows reach (the next level's
keys; read back in chunks of ``page_size``). The bag is byte-for-byte what a single read per table gives:
the pages, in RID order, are those rows in the same order.

Requests: a constant (one per association, member table, feature table and (table, key) per level) plus
one per page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from deriva_ml._log import get_logger
from deriva_ml.catalog.paging import linked_pages, query_pages
from deriva_ml.catalog.schema import is_asset
from deriva_ml.context import Ports
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.errors import UnknownTable
from deriva_ml.core.schema_defs import CatalogModel, TableDef
from deriva_ml.dataset._bag_plan import BagPlan, MemberRead, TableKey, csv_relpath, fetch_entry, hop_keys
from deriva_ml.dataset._bag_writer import BagWriter

Rows = Sequence[Mapping[str, Any]]


def at_snapshot(pages: Iterator[list[dict[str, Any]]], snapshot: str | None) -> Iterator[list[dict[str, Any]]]:
    """``pages``; a table created after the snapshot has no rows then (ERMrest: 409)."""
    try:
        yield from pages
    except UnknownTable:
        if snapshot is None:
            raise
        return


def key_chunks(keys: Sequence[str], size: int) -> Iterator[list[str]]:
    """Sorted ``keys`` in chunks of ``size`` (the rows of RID chunks, concatenated, are in RID order)."""
    for i in range(0, len(keys), size):
        yield list(keys[i : i + size])


class BagWalk:
    """One bag's walk: ``BagWalk(...).run()`` writes the member links and rows, feature values and the rows
    they reach (``url_of``: the ``fetch.txt`` URL of an asset's store URL) and returns, per table, its
    ``dataset.json`` entry (schema, CSV, asset, rows, role)."""

    def __init__(
        self,
        ports: Ports,
        model: CatalogModel,
        plan: BagPlan,
        writer: BagWriter,
        *,
        url_of: Callable[[str], str],
        page_size: int,
    ) -> None:
        self.ports, self.model, self.plan, self.writer, self.page_size = ports, model, plan, writer, page_size
        self.url_of = url_of
        self.log = get_logger("deriva_ml.dataset.bag", dataset_rid=plan.dataset_rid, version=str(plan.version))
        self.tables: dict[str, dict[str, Any]] = {}
        # (table, key column other than RID) -> values in the bag
        self.known: dict[tuple[TableKey, str], set[str]] = {}
        # (target table, target column) -> values the rows added since the last level reach
        self.frontier: dict[tuple[TableKey, str], set[str]] = {}
        for hops in plan.hops.values():
            for hop in hops:
                if hop.target_column != "RID":
                    self.known.setdefault((hop.target, hop.target_column), set())

    # reads -------------------------------------------------------------------------------------
    def linked(self, m: MemberRead, target: TableKey, target_column: str = "RID") -> Iterator[list[dict[str, Any]]]:
        """Pages of the rows of ``target`` whose ``target_column`` is a member linked by ``m``."""
        pages = linked_pages(
            self.ports.catalog,
            m.association[0],
            m.association[1],
            {m.dataset_column: sorted(set(self.plan.datasets))},
            via=m.member_column,
            target_schema=target[0],
            target_table=target[1],
            target_column=target_column,
            page_size=self.page_size,
            snapshot=self.plan.snapshot,
        )
        return at_snapshot(pages, self.plan.snapshot)

    def rows_where(self, table: TableKey, column: str, keys: Sequence[str]) -> Iterator[Rows]:
        """Pages of the rows of ``table`` whose ``column`` is one of ``keys`` (sorted), in RID order."""
        cat, snap = self.ports.catalog, self.plan.snapshot
        if column == "RID":  # chunks of sorted RIDs: one request each (or the adapter's URL-budget parts)
            chunks = (
                cat.query(table[0], table[1], {column: c}, snapshot=snap) for c in key_chunks(keys, self.page_size)
            )
            yield from at_snapshot(chunks, snap)
            return
        yield from at_snapshot(
            query_pages(cat, table[0], table[1], {column: list(keys)}, page_size=self.page_size, snapshot=snap), snap
        )

    # writes ------------------------------------------------------------------------------------
    def add(self, tdef: TableDef, pages: Iterable[Rows], role: str) -> None:
        """Write ``pages`` of ``tdef`` rows (each RID once), their files to fetch.txt, and remember the
        keys their foreign keys reach for the next level."""
        rel = csv_relpath(tdef)
        key = (tdef.schema, tdef.name)
        meta = self.tables.setdefault(
            tdef.name, {"schema": tdef.schema, "csv": rel, "asset": is_asset(tdef), "rows": 0, "role": role}
        )
        self.writer.rows(rel, tdef.column_names, ())  # the CSV exists (header) even without rows
        hops = self.plan.hops.get(key, ())
        known = [(col, values) for (k, col), values in self.known.items() if k == key]
        for rows in pages:
            new = self.writer.rows(rel, tdef.column_names, rows)
            if not new:
                continue
            if meta["asset"]:
                for r in new:
                    e = fetch_entry(tdef, r)
                    if e is None:
                        self.log.warning(
                            "asset row without URL/MD5/Length is not fetched", table=tdef.name, rid=r["RID"]
                        )
                        continue
                    self.writer.remote(e, self.url_of(e.url))
            for col, values in known:
                values.update(str(r[col]) for r in new if r.get(col) is not None)
            for hop in hops:
                self.frontier.setdefault((hop.target, hop.target_column), set()).update(hop_keys(new, hop))
        meta["rows"] = self.writer.row_count(rel)

    def have(self, hop_target: TableKey, column: str, k: str) -> bool:
        if column == "RID":
            tdef = self.model.table(*hop_target)
            return tdef is not None and self.writer.has_rid(csv_relpath(tdef), k)
        return k in self.known.get((hop_target, column), set())

    # the walk ----------------------------------------------------------------------------------
    def run(self) -> dict[str, dict[str, Any]]:
        plan, model, writer = self.plan, self.model, self.writer
        member_tables: set[TableKey] = set()
        # members: the links (which dataset holds which member) and the rows (joined on the server)
        for m in plan.members:
            adef, mdef = model.table(*m.association), model.table(*m.member)
            if adef is None or mdef is None:
                continue
            link_rel = csv_relpath(adef)
            cols = (m.dataset_column, m.member_column)
            writer.rows(link_rel, cols, (), keyed=False)
            n = 0
            links = query_pages(
                self.ports.catalog,
                m.association[0],
                m.association[1],
                {m.dataset_column: list(plan.datasets)},
                page_size=self.page_size,
                snapshot=plan.snapshot,
            )
            for page in at_snapshot(links, plan.snapshot):
                writer.rows(link_rel, cols, page, keyed=False)
                n += len(page)
            self.tables[adef.name] = {"schema": adef.schema, "csv": link_rel, "asset": False, "rows": n, "role": "link"}
            if not n or m.member == (ML_SCHEMA, "Dataset"):
                continue
            member_tables.add(m.member)
            self.add(mdef, self.linked(m, m.member), "member")

        # feature values of members (one read per feature table, joined on the server)
        for f in plan.features:
            fdef = model.table(*f.table)
            if fdef is None or f.target not in member_tables:
                continue
            m = next(x for x in plan.members if x.member == f.target)
            self.add(fdef, self.linked(m, f.table, f.target_column), "feature")

        # the foreign-key walk: each level reads the keys the previous level's new rows reach that the bag
        # does not have yet (decided for the whole level before any of its reads)
        while self.frontier:
            level, self.frontier = self.frontier, {}
            wanted: dict[tuple[TableKey, str], list[str]] = {}
            for (target, column), keys in sorted(level.items()):
                todo = sorted(k for k in keys if not self.have(target, column, k))
                if todo:
                    wanted[(target, column)] = todo
            del level
            for (target, column), todo in sorted(wanted.items()):
                tdef = model.table(*target)
                if tdef is None:
                    continue
                self.add(
                    tdef, self.rows_where(target, column, todo), self.tables.get(tdef.name, {}).get("role", "reached")
                )
        return self.tables


__all__ = ["BagWalk", "at_snapshot", "key_chunks"]
