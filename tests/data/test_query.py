"""Domain data on every backend: insert, query (filters, projection, linked tables, limit, paging, count),
update, delete, tables as dicts and data frames. Remote legs count HTTP requests at the boundary."""

from __future__ import annotations

import math
from typing import Any

import pytest
from data_support import remote
from live_support import http_log

from deriva_ml.core.errors import RIDNotFound, UnknownColumn, ValidationError
from deriva_ml.core.filters import as_filter, col, matches


def _subjects(ml: Any, n: int = 10) -> list[dict[str, Any]]:
    return ml.insert("Subject", [{"Name": f"s{i}", "Age": i if i % 4 else None} for i in range(n)])


def test_insert_returns_rows_with_rids(ml: Any) -> None:
    rows = _subjects(ml, 3)
    assert [r["Name"] for r in rows] == ["s0", "s1", "s2"]
    assert all(r["RID"] and r["RCT"] for r in rows)
    assert ml.retrieve_rid(rows[1]["RID"])["Age"] == 1
    assert ml.insert("Subject", []) == []


@pytest.mark.parametrize(
    "flt",
    [
        col("Age") > 3,
        col("Age") <= 2,
        col("Age") == None,  # noqa: E711
        col("Age") != 5,
        col("Name").in_(["s1", "s5", "nope"]),
        (col("Age") < 2) & (col("Name") == "s1") | (col("Age") >= 8),
        ~((col("Age") < 8) | (col("Age") == None)),  # noqa: E711
        {"Name": ["s2", "s3"], "Age": 3},
        col("Name").in_([]),
    ],
)
def test_where_selects_what_the_filter_means(ml: Any, flt: Any) -> None:
    """The same rows on every backend, and the rows the pure evaluator selects."""
    rows = _subjects(ml)
    expected = [r["RID"] for r in rows if matches(as_filter(flt), r)]
    assert [r["RID"] for r in ml.query("Subject").where(flt).fetch()] == sorted(expected)
    assert ml.query("Subject").where(flt).count() == len(expected)


def test_select_limit_first_and_chained_where(ml: Any) -> None:
    rows = _subjects(ml)
    q = ml.query("Subject").where(col("Age") > 0).where(col("Age") < 7).select("Name", "Age")
    assert q.fetch() == [{"Name": r["Name"], "Age": r["Age"]} for r in rows if r["Age"] and 0 < r["Age"] < 7]
    assert q.limit(2).fetch() == q.fetch()[:2]
    assert q.first() == q.fetch()[0]
    assert ml.query("Subject").where(Name="nobody").first() is None
    assert q.limit(0).fetch() == []


def test_linked_follows_foreign_keys_both_ways(ml: Any) -> None:
    subs = _subjects(ml, 4)
    samples = ml.insert("Sample", [{"Tag": f"x{i}", "Subject": subs[i % 2]["RID"]} for i in range(6)])
    # inbound: samples of subject s0 (each once)
    got = ml.query("Subject").where(Name="s0").linked("Sample").select("Tag").fetch()
    assert got == [{"Tag": s["Tag"]} for s in samples if s["Subject"] == subs[0]["RID"]]
    # outbound: subjects that have a sample tagged x1 or x3, each once; then filter on the linked table
    q = ml.query("Sample").where(col("Tag").in_(["x1", "x3", "x5"])).linked("Subject")
    assert [r["RID"] for r in q.fetch()] == [subs[1]["RID"]]
    assert q.count() == 1
    assert q.where(col("Age") > 100).fetch() == []
    # two hops back to samples: every sample of subjects having x1
    two = q.linked("Sample").select("Tag")
    assert sorted(r["Tag"] for r in two.fetch()) == ["x1", "x3", "x5"]


def test_linked_without_a_foreign_key_names_the_linked_tables(ml: Any) -> None:
    ml.create_table("Other", [])
    with pytest.raises(ValidationError, match=r"no foreign key links t:Subject and t:Other.*t:Sample"):
        ml.query("Subject").linked("Other")


def test_unknown_column_is_named_before_any_request(ml: Any) -> None:
    with pytest.raises(UnknownColumn, match="Agee"):
        ml.query("Subject").where(col("Agee") > 1)
    with pytest.raises(UnknownColumn, match="Nam"):
        ml.query("Subject").select("Nam")


def test_update_and_delete(ml: Any) -> None:
    rows = _subjects(ml, 5)
    assert ml.update("Subject", [{"RID": rows[0]["RID"], "Age": 40}, {"RID": rows[1]["RID"], "Name": "renamed"}]) == 2
    assert ml.retrieve_rid(rows[0]["RID"])["Age"] == 40
    assert ml.retrieve_rid(rows[1]["RID"])["Name"] == "renamed"
    with pytest.raises(RIDNotFound):
        ml.update("Subject", {"RID": "1-ZZZZ", "Age": 1})
    assert ml.delete("Subject", [rows[2]["RID"]]) == 1
    assert ml.delete("Subject", col("Age") > 30) == 1
    left = {r["RID"] for r in ml.get_table_as_dict("Subject")}
    assert left == {rows[1]["RID"], rows[3]["RID"], rows[4]["RID"]}
    with pytest.raises(ValidationError, match="None would delete every row"):
        ml.delete("Subject", None)
    with pytest.raises(ValidationError, match="own API"):
        ml.insert("Execution", {"Description": "x"})


def test_table_as_dataframe(ml: Any) -> None:
    pd = pytest.importorskip("pandas")
    rows = _subjects(ml, 3)
    df = ml.get_table_as_dataframe("Subject")
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns)[:5] == ["RID", "RCT", "RMT", "RCB", "RMB"]
    assert list(df["Name"]) == [r["Name"] for r in rows]


def test_paging_costs_one_request_per_page(ml: Any) -> None:
    """10,000 rows in pages of 1,000: ceil(n/page) requests on ERMrest, every row once, in RID order;
    count() and a filtered fetch are one request each."""
    n, size = 10_000, 1_000
    inserted = ml.insert("Subject", [{"Name": f"s{i}", "Age": i} for i in range(n)])
    with http_log() as log:
        pages = list(ml.query("Subject").select("Name").pages(size))
        paged = log.count(service="ermrest")
        total = ml.query("Subject").count()
        counted = log.count(service="ermrest") - paged
        few = ml.query("Subject").where(col("Age") >= n - 5).fetch()
        fetched = log.count(service="ermrest") - paged - counted
    assert [len(p) for p in pages] == [size] * (n // size)
    assert [r["Name"] for p in pages for r in p] == [r["Name"] for r in sorted(inserted, key=lambda r: r["RID"])]
    assert total == n and len(few) == 5
    if remote(ml):
        assert (paged, counted, fetched) == (math.ceil(n / size), 1, 1)
    else:
        assert (paged, counted, fetched) == (0, 0, 0)
    # page(after=...) resumes after a RID; iteration walks every page
    ordered = sorted(r["RID"] for r in inserted)
    second = ml.query("Subject").select("RID").limit(3).page(ordered[2]).fetch()
    assert [r["RID"] for r in second] == ordered[3:6]
    assert sum(1 for _ in ml.query("Subject").where(col("Age") < 2500)) == 2500


def test_long_value_lists_are_split_by_the_adapter(ml: Any) -> None:
    """A 2,000-value in_() filter fits no URL: the ERMrest adapter splits it and merges the parts."""
    rows = ml.insert("Subject", [{"Name": f"subject-with-a-long-name-{i:05d}", "Age": i} for i in range(2000)])
    names = [r["Name"] for r in rows]
    q = ml.query("Subject").where(col("Name").in_(names))
    assert len(q.fetch()) == 2000 and q.count() == 2000
    assert [r["Age"] for r in q.limit(3).fetch()] == [0, 1, 2]
