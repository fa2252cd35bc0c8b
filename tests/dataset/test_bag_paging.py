"""A bag is built page by page: paged reads (``deriva_ml.catalog.paging``) equal the unpaged ones, a bag
built with small pages is byte-for-byte the bag built in one page, the requests are a constant plus one
per page, and the rows of all members are never held at once.

Runs on the embedded catalog, deriva_ml's ERMrest adapter against the fake ERMrest (requests counted),
and the lab server when ``DERIVA_ML_TEST_HOST`` is set.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
from dataset_helpers import BACKENDS, open_backend
from test_bag_complete import World, world  # noqa: F401 (the fixture, both backends)

from deriva_ml import DerivaML
from deriva_ml.catalog.paging import linked_pages, query_pages, where_filter
from deriva_ml.context import Ports
from deriva_ml.core.effects import Batch, Insert
from deriva_ml.core.errors import ValidationError
from deriva_ml.core.filters import And, Cmp, In
from deriva_ml.dataset._bag_build import BAG_PAGE_SIZE, build_bag, resolve_version
from deriva_ml.testing import add_domain_schema


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DerivaML]:
    with ExitStack() as stack:
        ml, _ = open_backend(request.param, tmp_path, stack)
        add_domain_schema(ml)
        yield ml
        ml.close()


def _requests(ml: DerivaML) -> int:
    return int(getattr(ml.catalog, "request_count", 0))


def _members(ml: DerivaML, n: int, subjects: int = 3, prefix: str = "p") -> tuple[str, list[str]]:
    """A dataset of ``n`` Image members (each of one of ``subjects`` Subjects); ``(dataset, images)``."""
    dom = ml.domain_schema or ""
    subj = ml.catalog.apply(Batch([Insert(dom, "Subject", [{"Name": f"s{i}"} for i in range(subjects)])]))
    srids = [r["RID"] for r in subj.inserted[0]]
    rows = [
        {
            "URL": f"/hatrac/{prefix}/{i}",
            "Filename": f"{prefix}{i}.png",
            "Length": i,
            "MD5": "m",
            "Subject": srids[i % subjects],
        }
        for i in range(n)
    ]
    images = [r["RID"] for r in ml.catalog.apply(Batch([Insert(dom, "Image", rows)])).inserted[0]]
    ds = ml.create_dataset("Training", f"{n} images")
    ds.add_dataset_members({"Image": images})
    return ds.dataset_rid, images


def _build(ports: Ports, rid: str, out: Path, *, page_size: int, materialize: bool = False) -> Path:
    version, vrow = resolve_version(ports, rid, None)  # type: ignore[arg-type]
    staging, work = out / "bag", out / "work"
    staging.mkdir(parents=True)
    work.mkdir()
    build_bag(ports, rid, version, vrow, staging, work, materialize=materialize, page_size=page_size)  # type: ignore[arg-type]
    return staging


def _files(bag: Path) -> dict[str, bytes]:
    return {str(p.relative_to(bag)): p.read_bytes() for p in sorted(bag.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------- paged reads


def test_where_filter() -> None:
    assert where_filter(None) is None and where_filter({}) is None
    assert where_filter({"A": 1}) == Cmp("A", "eq", 1)
    assert where_filter({"A": None}) == Cmp("A", "null")
    assert where_filter({"A": [1, 2], "B": "x"}) == And((In("A", (1, 2)), Cmp("B", "eq", "x")))


def test_pages_are_the_rows_of_one_query_in_rid_order(backend: DerivaML) -> None:
    ml = backend
    dom = ml.domain_schema or ""
    ds, images = _members(ml, 25)
    where = {"Dataset": [ds]}
    before = _requests(ml)
    pages = list(query_pages(ml.catalog, dom, "Dataset_Image", where, page_size=4))
    if ml.host_name != "local":
        assert _requests(ml) - before == 7  # 6 full pages and a short one: no request after a short page
    assert [len(p) for p in pages] == [4, 4, 4, 4, 4, 4, 1]
    assert [r for p in pages for r in p] == ml.catalog.query(dom, "Dataset_Image", where)
    linked = list(
        linked_pages(
            ml.catalog, dom, "Dataset_Image", where, via="Image", target_schema=dom, target_table="Image", page_size=10
        )
    )
    assert [len(p) for p in linked] == [10, 10, 5]
    flat = [r for p in linked for r in p]
    assert flat == ml.catalog.query_linked(
        dom, "Dataset_Image", where, via="Image", target_schema=dom, target_table="Image"
    )
    assert [r["RID"] for r in flat] == sorted(images)
    # an exact multiple of the page: one more (empty) request ends it; columns without RID stay without
    before = _requests(ml)
    named = list(query_pages(ml.catalog, dom, "Image", {"RID": images[:20]}, columns=["Filename"], page_size=5))
    if ml.host_name != "local":
        assert _requests(ml) - before == 5
    assert [len(p) for p in named] == [5, 5, 5, 5] and all(set(r) == {"Filename"} for p in named for r in p)
    assert list(query_pages(ml.catalog, dom, "Image", {"RID": []}, page_size=5)) == []
    with pytest.raises(ValidationError, match="page_size=0"):
        next(query_pages(ml.catalog, dom, "Image", page_size=0))


class _PlainCatalog:
    """A delegate offering only the Catalog port (no path queries), like a wrapper would."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def query(self, *a: Any, **k: Any) -> list[dict[str, Any]]:
        return self.inner.query(*a, **k)  # type: ignore[no-any-return]

    def query_linked(self, *a: Any, **k: Any) -> list[dict[str, Any]]:
        return self.inner.query_linked(*a, **k)  # type: ignore[no-any-return]


def test_a_catalog_without_path_queries_answers_in_one_page(backend: DerivaML) -> None:
    ml = backend
    dom = ml.domain_schema or ""
    ds, images = _members(ml, 7)
    plain = _PlainCatalog(ml.catalog)
    assert list(query_pages(plain, dom, "Dataset_Image", {"Dataset": ds}, page_size=2)) == [
        ml.catalog.query(dom, "Dataset_Image", {"Dataset": ds})
    ]
    (page,) = linked_pages(
        plain, dom, "Dataset_Image", {"Dataset": ds}, via="Image", target_schema=dom, target_table="Image", page_size=2
    )
    assert [r["RID"] for r in page] == sorted(images)


# ------------------------------------------------------------------------------------------- bags


def test_a_bag_built_in_small_pages_is_byte_for_byte_the_one_page_bag(world: World, tmp_path: Path) -> None:  # noqa: F811
    ml = world.ml
    scans = world.scans(9, world.donors)
    for i, s in enumerate(scans):
        world.label(s, ["good", "bad", "good"][: 1 + i % 3])
    child = ml.create_dataset("Training", "child")
    child.add_dataset_members({"Scan": scans[:4]})
    top = ml.create_dataset("Training", "top")
    top.add_dataset_members({"Scan": scans[3:]})
    top.add_dataset_members([child.dataset_rid])
    fixed = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    ports = attrs.evolve(ml.ports, clock=lambda: fixed)
    one = _files(_build(ports, top.dataset_rid, tmp_path / "one", page_size=BAG_PAGE_SIZE, materialize=True))
    for size in (1, 2, 5):
        paged = _files(_build(ports, top.dataset_rid, tmp_path / f"p{size}", page_size=size, materialize=True))
        assert sorted(paged) == sorted(one)
        for name, data in one.items():
            assert paged[name] == data, name
    assert len([n for n in one if n.startswith("data/assets/Scan/")]) == 9
    assert one["data/t/Execution_Scan_Quality.csv"].count(b"\n") == 1 + sum(1 + i % 3 for i in range(9))


def test_bag_requests_are_a_constant_plus_one_per_page(backend: DerivaML, tmp_path: Path) -> None:
    """2,000 members in pages of 100: links and members are read in 20 full pages and an empty one each
    (40 more requests than in one page); the rest (versions, tree, Subjects, datasets) is the same."""
    ml = backend
    ds, _ = _members(ml, 2000)
    costs = {}
    for size in (BAG_PAGE_SIZE, 100):
        before = _requests(ml)
        bag = _build(ml.ports, ds, tmp_path / str(size), page_size=size)
        costs[size] = _requests(ml) - before
        assert (bag / "data/t/Image.csv").read_bytes().count(b"\n") == 2001
        assert (bag / "data/t/Subject.csv").read_bytes().count(b"\n") == 4
        assert (bag / "fetch.txt").read_bytes().count(b"\n") == 2000
    if ml.host_name != "local":
        print(f"bag requests by page size: {costs}")
        assert costs[100] - costs[BAG_PAGE_SIZE] == 2 * 20


def _peak(fn: Any) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_rows_of_all_members_are_not_held_at_once(tmp_path: Path) -> None:
    """Embedded: building a bag of 2,000 members in pages of 50 peaks little above building a bag of 50
    members (a page), far below building the 2,000 in one page (the rows of all members at once)."""
    from deriva_ml.testing import new_embedded_catalog

    new_embedded_catalog(tmp_path, "t")
    ml = DerivaML("local", "t", home=tmp_path)
    try:
        add_domain_schema(ml)
        small, _ = _members(ml, 50, prefix="small")
        big, _ = _members(ml, 2000)
        _build(ml.ports, big, tmp_path / "warm", page_size=50)  # imports and caches out of the measure
        # the least of three runs: tracemalloc also counts other threads (e.g. a test runner's), which only add
        base = min(_peak(lambda i=i: _build(ml.ports, small, tmp_path / f"small{i}", page_size=50)) for i in range(3))
        whole = min(
            _peak(lambda i=i: _build(ml.ports, big, tmp_path / f"whole{i}", page_size=BAG_PAGE_SIZE)) for i in range(3)
        )
        paged = min(_peak(lambda i=i: _build(ml.ports, big, tmp_path / f"paged{i}", page_size=50)) for i in range(3))
        print(
            f"bag build peak: 50 members {base / 1e6:.2f} MB; 2000 in one page {whole / 1e6:.2f} MB, in pages of 50 {paged / 1e6:.2f} MB"
        )
        assert whole - base > 1_000_000  # the rows of 2,000 members, held at once
        assert paged - base < (whole - base) / 4
    finally:
        ml.close()
