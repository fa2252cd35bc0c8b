"""Listing dataset members costs a constant number of catalog requests, whatever the member count.

Runs on the embedded catalog and on deriva_ml's ERMrest adapter talking HTTP to the ERMrest subset in
``tests/catalog/ermrest_fake.py``, where every request is counted. A catalog without ``query_linked``
(a plain delegate) still gives the same answers through the fallback (links, then rows).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from dataset_helpers import BACKENDS, open_backend

from deriva_ml import DerivaML
from deriva_ml.catalog.port import Where
from deriva_ml.core.effects import Batch, BatchResult, Insert
from deriva_ml.core.rid import RID
from deriva_ml.core.schema_defs import CatalogModel, TableDef
from deriva_ml.testing import add_domain_schema


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[DerivaML, Any]]:
    """``(ml, server)``: a DerivaML with the spec's domain schema; ``server`` is the fake ERMrest or None.
    On ERMrest (fake or live) ``ml.catalog.request_count`` counts the adapter's requests."""
    with ExitStack() as stack:
        ml, server = open_backend(request.param, tmp_path, stack)
        add_domain_schema(ml)
        yield ml, server
        ml.close()


def _images(ml: DerivaML, n: int, prefix: str) -> list[str]:
    rows = [{"URL": f"/hatrac/{prefix}/{i}", "Filename": f"{prefix}{i}.png", "Length": i, "MD5": "m"} for i in range(n)]
    result = ml.catalog.apply(Batch([Insert(ml.domain_schema or "", "Image", rows)]))
    return [r["RID"] for r in result.inserted[0]]


def _requests(ml: DerivaML, server: Any) -> int:
    return int(getattr(ml.catalog, "request_count", 0))


def test_listing_members_is_constant_in_the_member_count(backend: tuple[DerivaML, Any]) -> None:
    ml, server = backend
    small = ml.create_dataset("Training", "small")
    big = ml.create_dataset("Training", "big")
    small.add_dataset_members({"Image": _images(ml, 10, "s")})
    big_rids = _images(ml, 1000, "b")
    big.add_dataset_members({"Image": big_rids})
    costs = {}
    for ds, n in ((small, 10), (big, 1000)):
        before = _requests(ml, server)
        members = ml.list_dataset_members(ds.dataset_rid)
        costs[n] = _requests(ml, server) - before
        assert [r["RID"] for r in members["Image"]] == sorted(r["RID"] for r in members["Image"])
        assert len(members["Image"]) == n and members["Dataset"] == [] and members["File"] == []
    assert [r["RID"] for r in ml.list_dataset_members(big.dataset_rid)["Image"]] == sorted(big_rids)
    if ml.host_name != "local":
        # the versions, then one linked GET per membership association (Dataset_Dataset, Dataset_File,
        # Dataset_Image); before query_linked: 1 + 1 (nesting) + 3 (links) + 1000/200 (rows) = 10
        assert costs == {10: 4, 1000: 4}
        if server is not None:
            linked = [p for m, p, _ in server.log[-4:] if m == "GET" and ")=(" in p]
            assert len(linked) == 3 and all("?limit=none" in p for p in linked)
    limited = ml.list_dataset_members(big.dataset_rid, limit=7)["Image"]
    assert [r["RID"] for r in limited] == sorted(big_rids)[:7]
    assert ml.list_dataset_members(big.dataset_rid, limit=0)["Image"] == []


def test_bag_rows_are_constant_in_the_member_count(backend: tuple[DerivaML, Any]) -> None:
    ml, server = backend
    costs = {}
    for n in (10, 1000):
        ds = ml.create_dataset("Training", f"d{n}")
        ds.add_dataset_members({"Image": _images(ml, n, f"b{n}-")})
        before = _requests(ml, server)
        bag = ds.download_dataset_bag(materialize=False)
        costs[n] = _requests(ml, server) - before
        assert len(bag.list_dataset_members()["Image"]) == n
    if ml.host_name != "local":
        assert costs[10] == costs[1000]


def test_members_at_old_versions_and_nested_datasets(backend: tuple[DerivaML, Any]) -> None:
    ml, _ = backend
    first, second = _images(ml, 3, "x"), _images(ml, 2, "y")
    child = ml.create_dataset("Training", "child")
    v1 = child.add_dataset_members({"Image": first})
    child.add_dataset_members({"Image": second + first[:1]})  # a repeated member is listed once
    parent = ml.create_dataset("Training", "parent")
    parent.add_dataset_members([child.dataset_rid])
    assert sorted(r["RID"] for r in ml.list_dataset_members(child.dataset_rid, v1)["Image"]) == sorted(first)
    assert len(ml.list_dataset_members(child.dataset_rid)["Image"]) == 5
    assert ml.list_dataset_members(child.dataset_rid, "0.1.0")["Image"] == []
    top = ml.list_dataset_members(parent.dataset_rid)
    assert top["Image"] == [] and [r["RID"] for r in top["Dataset"]] == [child.dataset_rid]
    deep = ml.list_dataset_members(parent.dataset_rid, recurse=True, limit=4)
    assert [r["RID"] for r in deep["Image"]] == sorted(first + second)[:4]


class PlainCatalog:
    """A catalog adapter without ``query_linked`` (delegates the rest of the port to a real catalog)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.queries = 0

    def model(self, *, refresh: bool = False) -> CatalogModel:
        return self.inner.model(refresh=refresh)  # type: ignore[no-any-return]

    def apply(self, batch: Batch) -> BatchResult:
        return self.inner.apply(batch)  # type: ignore[no-any-return]

    def query(self, schema: str, table: str, where: Where | None = None, **kw: Any) -> list[dict[str, Any]]:
        self.queries += 1
        return self.inner.query(schema, table, where, **kw)  # type: ignore[no-any-return]

    def resolve_rid(self, rid: RID) -> tuple[str, str]:
        return self.inner.resolve_rid(rid)  # type: ignore[no-any-return]

    def create_tables(self, tables: Sequence[TableDef]) -> None:
        self.inner.create_tables(tables)

    def snapshot(self) -> str:
        return self.inner.snapshot()  # type: ignore[no-any-return]

    def close(self) -> None:
        self.inner.close()


def test_catalog_without_query_linked_gives_the_same_members(tmp_path: Path) -> None:
    ml = DerivaML("local", "t", home=tmp_path)
    add_domain_schema(ml)
    parent = ml.create_dataset("Training", "p")
    child = ml.create_dataset("Training", "c")
    child.add_dataset_members({"Image": _images(ml, 450, "i")})
    parent.add_dataset_members({"Image": _images(ml, 2, "j")})
    parent.add_dataset_members([child.dataset_rid])
    plain = PlainCatalog(ml.catalog)
    other = DerivaML("local", "t", home=tmp_path, catalog=plain, store=ml.store)  # type: ignore[arg-type]
    for kw in ({}, {"recurse": True}, {"recurse": True, "limit": 5}, {"version": "0.2.0"}):
        assert other.list_dataset_members(parent.dataset_rid, **kw) == ml.list_dataset_members(parent.dataset_rid, **kw)
    plain.queries = 0
    other.list_dataset_members(parent.dataset_rid, recurse=True)
    assert plain.queries > 5  # the fallback reads links, then rows, per table and nesting level
    ml.close()
