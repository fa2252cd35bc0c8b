"""On-conflict-skip inserts with labels: every label gets the RID of the row it names (inserted or the stored
row it collided with), and the skipped rows are resolved with a constant number of requests, not one GET
each. On the embedded catalog, the ERMrest fake and (with ``DERIVA_ML_TEST_HOST``) the live server."""

from __future__ import annotations

from catalog_support import DOMAIN

from deriva_ml.catalog.port import Catalog
from deriva_ml.catalog.schema import plain_table
from deriva_ml.core.effects import Batch, Insert
from deriva_ml.core.schema_defs import ColumnDef, KeyDef


def _counts(cat: Catalog) -> tuple[int, int]:
    """(requests, GETs) made so far by an ERMrest adapter; (0, 0) for the embedded catalog."""
    return getattr(cat, "request_count", 0), getattr(cat, "requests", {}).get("GET", 0)


def test_300_rows_of_which_200_exist_get_right_rids_in_constant_requests(catalog: Catalog) -> None:
    names = [f"subject-with-a-longish-name-{i:04d}" for i in range(300)]
    old = catalog.apply(Batch([Insert(DOMAIN, "Subject", [{"Name": n} for n in names[:200]], labels=names[:200])])).rids
    rows = [{"Name": n, "Age": 1} for n in reversed(names)]  # the existing ones interleaved with new ones
    before, gets_before = _counts(catalog)
    res = catalog.apply(
        Batch([Insert(DOMAIN, "Subject", rows, labels=[r["Name"] for r in rows], on_conflict_skip=True)])
    )
    after, gets_after = _counts(catalog)
    assert len(res.inserted[0]) == 100
    stored = {r["Name"]: r["RID"] for r in catalog.query(DOMAIN, "Subject", columns=["RID", "Name"])}
    assert len(stored) == 300
    assert res.rids == {n: stored[n] for n in names}
    assert all(res.rids[n] == old[n] for n in names[:200])
    if hasattr(catalog, "request_count"):
        # one POST, then the 200 skipped names in one query split only by the URL budget (~40 bytes a name,
        # budget 3,000: 3 parts); on today's main, 200 GETs
        assert after - before <= 1 + 4
        assert gets_after - gets_before <= 4


def test_a_row_skipped_for_its_second_key_is_resolved_by_that_key(catalog: Catalog) -> None:
    coded = plain_table(
        DOMAIN,
        "Coded",
        [ColumnDef("Name", "text"), ColumnDef("Code", "int4")],
        keys=[KeyDef(("Name",)), KeyDef(("Code",))],
    )
    catalog.create_tables([coded])
    old = catalog.apply(
        Batch([Insert(DOMAIN, "Coded", [{"Name": "a", "Code": 1}, {"Name": "b", "Code": 2}], labels=["a", "b"])])
    ).rids
    before, _ = _counts(catalog)
    rows = [{"Name": "new", "Code": 1}, {"Name": "b", "Code": 99}, {"Name": "c", "Code": 3}]
    res = catalog.apply(Batch([Insert(DOMAIN, "Coded", rows, labels=["x", "y", "z"], on_conflict_skip=True)]))
    after, _ = _counts(catalog)
    assert res.rids["x"] == old["a"]  # collided on Code
    assert res.rids["y"] == old["b"]  # collided on Name
    assert [r["Name"] for r in res.inserted[0]] == ["c"]
    if hasattr(catalog, "request_count"):
        assert after - before <= 3  # the insert, one query by Name, one by Code
