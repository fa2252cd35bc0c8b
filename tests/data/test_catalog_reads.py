"""retrieve_rid, resolve_rids (request counts), catalog_snapshot (read-only, old state), chaise_url, cite."""

from __future__ import annotations

from typing import Any

import pytest
from data_support import remote
from live_support import http_log

from deriva_ml.core.errors import InvalidRID, RIDNotFound
from deriva_ml.core.filters import col
from deriva_ml.data import EmbeddedCatalogOnly, ReadOnlyCatalog


def test_retrieve_rid_reads_any_table(ml: Any) -> None:
    s = ml.insert("Subject", {"Name": "a", "Age": 3})[0]
    ds = ml.create_dataset("Complete", "d")
    assert ml.retrieve_rid(s["RID"])["Name"] == "a"
    assert ml.retrieve_rid(ds.dataset_rid)["Description"] == "d"
    with pytest.raises(RIDNotFound):
        ml.retrieve_rid("1-ZZZZ")
    with pytest.raises(InvalidRID):
        ml.retrieve_rid("not/a/rid")


def test_resolve_rids_many_in_few_requests(ml: Any) -> None:
    """100 RIDs of three tables: at most one request per table of the model on ERMrest (the server's
    /entity_rid/ takes one RID at a time), none on the embedded catalog."""
    subs = ml.insert("Subject", [{"Name": f"s{i}"} for i in range(60)])
    samples = ml.insert("Sample", [{"Tag": f"x{i}", "Subject": subs[0]["RID"]} for i in range(39)])
    ds = ml.create_dataset("Complete", "d")
    rids = [r["RID"] for r in subs + samples] + [ds.dataset_rid]
    tables = len(ml.catalog.model().tables)
    with http_log() as log:
        found = ml.resolve_rids(rids)
    assert {v for v in found.values()} == {("t", "Subject"), ("t", "Sample"), ("deriva-ml", "Dataset")}
    assert found[samples[3]["RID"]] == ("t", "Sample")
    n = log.count(service="ermrest")
    assert n <= tables if remote(ml) else n == 0
    # restricted to candidate tables: one request per candidate
    with http_log() as log:
        assert ml.resolve_rids([r["RID"] for r in subs], candidate_tables=["Subject"]) == {
            r["RID"]: ("t", "Subject") for r in subs
        }
    assert log.count(service="ermrest") == (1 if remote(ml) else 0)
    with pytest.raises(RIDNotFound):
        ml.resolve_rids([*rids[:50], "1-ZZZZ"])


def test_catalog_snapshot_is_read_only_and_old(ml: Any, tmp_path: Any) -> None:
    first = ml.insert("Subject", [{"Name": "a", "Age": 1}, {"Name": "b", "Age": 2}])
    snap = ml.catalog.snapshot()
    ml.insert("Subject", {"Name": "c", "Age": 3})
    ml.delete("Subject", [first[0]["RID"]])
    old = ml.catalog_snapshot(snap)
    assert old.working_dir == ml.working_dir and old.cache_dir == ml.cache_dir
    assert [r["Name"] for r in old.get_table_as_dict("Subject")] == ["a", "b"]
    assert old.query("Subject").where(col("Age") < 2).count() == 1
    assert old.retrieve_rid(first[0]["RID"])["Name"] == "a"  # deleted since, still there then
    assert [r["Name"] for r in ml.get_table_as_dict("Subject")] == ["b", "c"]
    with pytest.raises(ReadOnlyCatalog, match=f"snapshot {snap}"):
        old.insert("Subject", {"Name": "d"})
    with pytest.raises(ReadOnlyCatalog):
        old.create_dataset("Complete", "nope")
    with pytest.raises(ReadOnlyCatalog):
        old.create_table("X", [])
    old.close()
    assert ml.get_table_as_dict("Subject")  # the original handle still works


def test_catalog_snapshot_rejects_an_unknown_snapshot(ml: Any) -> None:
    from deriva_ml.core.errors import DerivaMLException

    with pytest.raises(DerivaMLException):
        ml.catalog_snapshot("not-a-snapshot!")


def test_chaise_url_and_cite(ml: Any) -> None:
    s = ml.insert("Subject", {"Name": "a"})[0]
    if not remote(ml):
        for call in (lambda: ml.chaise_url(s["RID"]), lambda: ml.cite(s["RID"]), ml.pathBuilder):
            with pytest.raises(EmbeddedCatalogOnly, match="live DERIVA server"):
                call()
        return
    cat = ml.catalog
    base = f"{cat.scheme}://{cat.hostname}"
    assert ml.chaise_url(s["RID"]) == f"{base}/chaise/record/#{ml.catalog_id}/t:Subject/RID={s['RID']}"
    assert ml.chaise_url("Subject") == f"{base}/chaise/recordset/#{ml.catalog_id}/t:Subject"
    snap = cat.snapshot()
    assert ml.cite(s["RID"]) == f"{base}/id/{ml.catalog_id}/{s['RID']}@{snap}"
    assert ml.cite(s["RID"], current=True) == f"{base}/id/{ml.catalog_id}/{s['RID']}"
    # the cited snapshot is one the server resolves the RID at (the lab has no /id/ resolver or Chaise
    # installed; both are the standard DERIVA deployment paths)
    assert cat.resolve_rid(f"{s['RID']}@{snap}") == ("t", "Subject")
    with pytest.raises(RIDNotFound):
        ml.cite("1-ZZZZ")


def test_path_builder_on_a_live_server(ml: Any) -> None:
    if ml.backend != "ermrest-live":
        pytest.skip("datapath is offered on a live server only")
    s = ml.insert("Subject", {"Name": "pb"})[0]
    pb = ml.pathBuilder()
    rows = list(pb.schemas["t"].tables["Subject"].filter(s["RID"] == pb.schemas["t"].tables["Subject"].RID).entities())
    assert rows[0]["Name"] == "pb"
