"""The catalog port's contract, run against every adapter (see conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest
from catalog_support import DOMAIN

from deriva_ml.catalog.port import ML_SCHEMA, Catalog
from deriva_ml.catalog.schema import ML_TABLES, SEED_TERMS, plain_table
from deriva_ml.catalog.sqlite import SQLiteCatalog
from deriva_ml.core.effects import Batch, Delete, Insert, Ref, Update
from deriva_ml.core.errors import (
    ConflictError,
    ForeignKeyError,
    InvalidRID,
    RIDNotFound,
    UnknownColumn,
    UnknownTable,
    ValidationError,
)
from deriva_ml.core.rid import RID, is_rid
from deriva_ml.core.schema_defs import SYSTEM_COLUMNS, ColumnDef


def _subject(name: str, **extra: Any) -> dict[str, Any]:
    return {"Name": name, **extra}


def test_model_has_every_table_column_and_key(catalog: Catalog) -> None:
    model = catalog.model()
    for expected in ML_TABLES:
        got = model.table(expected.schema, expected.name)
        assert got is not None, expected.qualified
        got_cols = {c.name: c for c in got.columns}
        for c in expected.columns:
            assert c.name in got_cols, (expected.qualified, c.name)
            assert got_cols[c.name].type == c.type, (expected.qualified, c.name)
            assert got_cols[c.name].nullok == c.nullok, (expected.qualified, c.name)
        got_keys = {frozenset(k.columns) for k in got.keys}
        for k in expected.keys:
            assert frozenset(k.columns) in got_keys, (expected.qualified, k.columns)
        got_fks = {(fk.columns, fk.pk_schema, fk.pk_table, fk.pk_columns) for fk in got.foreign_keys}
        for fk in expected.foreign_keys:
            assert (fk.columns, fk.pk_schema, fk.pk_table, fk.pk_columns) in got_fks, (expected.qualified, fk)
    assert model.table(DOMAIN, "Subject") is not None


def test_seeded_terms(catalog: Catalog) -> None:
    for vocab, terms in SEED_TERMS.items():
        names = {r["Name"] for r in catalog.query(ML_SCHEMA, vocab, columns=["Name"])}
        assert {t["Name"] for t in terms} <= names
    role = catalog.query(ML_SCHEMA, "Asset_Role", {"Name": "Input"})[0]
    assert role["ID"].endswith(role["RID"]) and role["URI"].endswith(role["RID"])


def test_insert_with_labels_and_refs(catalog: Catalog) -> None:
    result = catalog.apply(
        Batch(
            [
                Insert(ML_SCHEMA, "Workflow", [{"Name": "train", "URL": "https://x/y.py", "Checksum": "abc"}], ["w"]),
                Insert(ML_SCHEMA, "Execution", [{"Workflow": Ref("w"), "Status": "Created"}], ["e"]),
                Insert(ML_SCHEMA, "Workflow_Workflow_Type", [{"Workflow": Ref("w"), "Workflow_Type": "Training"}]),
            ]
        )
    )
    w, e = result.rids["w"], result.rids["e"]
    assert is_rid(w) and is_rid(e) and w != e
    assert len(result.inserted) == 3
    row = result.inserted[1][0]
    assert row["RID"] == e and row["Workflow"] == w
    assert set(SYSTEM_COLUMNS) <= set(row)
    got = catalog.query(ML_SCHEMA, "Execution", {"RID": e})
    assert got[0]["Workflow"] == w and got[0]["Status"] == "Created"
    assert catalog.resolve_rid(e) == (ML_SCHEMA, "Execution")


def test_values_round_trip(catalog: Catalog) -> None:
    catalog.apply(
        Batch(
            [
                Insert(
                    DOMAIN,
                    "Subject",
                    [_subject("a", Age=3, Weight=1.5, Flag=True, Tags=["x", "y"], Extra={"k": [1, 2]})],
                )
            ]
        )
    )
    row = catalog.query(DOMAIN, "Subject", {"Name": "a"})[0]
    assert row["Age"] == 3 and row["Weight"] == 1.5 and row["Flag"] is True
    assert row["Tags"] == ["x", "y"] and row["Extra"] == {"k": [1, 2]}
    assert catalog.query(DOMAIN, "Subject", {"Flag": True}, columns=["Name"]) == [{"Name": "a"}]


def test_on_conflict_skip(catalog: Catalog) -> None:
    catalog.apply(Batch([Insert(DOMAIN, "Subject", [_subject("a")])]))
    result = catalog.apply(Batch([Insert(DOMAIN, "Subject", [_subject("a"), _subject("b")], on_conflict_skip=True)]))
    assert [r["Name"] for r in result.inserted[0]] == ["b"]
    assert sorted(r["Name"] for r in catalog.query(DOMAIN, "Subject", columns=["Name"])) == ["a", "b"]


def test_update(catalog: Catalog) -> None:
    rid = catalog.apply(Batch([Insert(DOMAIN, "Subject", [_subject("a", Age=1)], ["a"])])).rids["a"]
    catalog.apply(Batch([Update(DOMAIN, "Subject", [{"RID": rid, "Age": 2, "Tags": ["t"]}])]))
    row = catalog.query(DOMAIN, "Subject", {"RID": rid})[0]
    assert row["Age"] == 2 and row["Tags"] == ["t"] and row["Name"] == "a"
    catalog.apply(Batch([Update(DOMAIN, "Subject", [{"Name": "a", "Age": 5}], key=("Name",))]))
    assert catalog.query(DOMAIN, "Subject", {"RID": rid})[0]["Age"] == 5


def test_update_missing_row(catalog: Catalog) -> None:
    with pytest.raises(RIDNotFound, match="1-ZZZZ"):
        catalog.apply(Batch([Update(DOMAIN, "Subject", [{"RID": "1-ZZZZ", "Age": 2}])]))


def test_delete(catalog: Catalog) -> None:
    res = catalog.apply(Batch([Insert(DOMAIN, "Subject", [_subject(n) for n in "abc"])]))
    rids = [r["RID"] for r in res.inserted[0]]
    catalog.apply(Batch([Delete(DOMAIN, "Subject", "RID", rids[:2])]))
    assert [r["Name"] for r in catalog.query(DOMAIN, "Subject")] == ["c"]
    with pytest.raises(RIDNotFound):
        catalog.resolve_rid(RID(rids[0]))
    catalog.apply(Batch([Delete(DOMAIN, "Subject", "Name", ["c"], {"Age": 99})]))
    assert len(catalog.query(DOMAIN, "Subject")) == 1


def test_query_filters_order_limit(catalog: Catalog) -> None:
    catalog.apply(Batch([Insert(DOMAIN, "Subject", [_subject(f"s{i}", Age=i % 3) for i in range(10)])]))
    assert len(catalog.query(DOMAIN, "Subject", {"Age": 1})) == 3
    assert len(catalog.query(DOMAIN, "Subject", {"Age": [0, 2]})) == 7
    assert len(catalog.query(DOMAIN, "Subject", {"Age": [0, 2], "Name": ["s0", "s1", "s2"]})) == 2
    got = catalog.query(DOMAIN, "Subject", columns=["Name", "Age"], order_by=["Name"], limit=3)
    assert got == [{"Name": "s0", "Age": 0}, {"Name": "s1", "Age": 1}, {"Name": "s2", "Age": 2}]
    assert catalog.query(DOMAIN, "Subject", {"Name": "nope"}) == []


def test_names_with_spaces_and_odd_values(catalog: Catalog) -> None:
    odd = "a/b;c=d&e,f(g) h%i?j@k:l"
    catalog.apply(Batch([Insert(DOMAIN, "Subject", [_subject(odd)])]))
    assert catalog.query(DOMAIN, "Subject", {"Name": odd})[0]["Name"] == odd
    catalog.apply(Batch([Delete(DOMAIN, "Subject", "Name", [odd])]))
    assert catalog.query(DOMAIN, "Subject", {"Name": odd}) == []


def test_unknown_table_and_column(catalog: Catalog) -> None:
    with pytest.raises(UnknownTable, match="Nope"):
        catalog.apply(Batch([Insert(DOMAIN, "Nope", [{"Name": "x"}])]))
    with pytest.raises(UnknownTable, match="Nope"):
        catalog.query(DOMAIN, "Nope")
    with pytest.raises(UnknownColumn, match="Colour"):
        catalog.apply(Batch([Insert(DOMAIN, "Subject", [{"Name": "x", "Colour": "red"}])]))
    with pytest.raises(UnknownColumn, match="Colour"):
        catalog.query(DOMAIN, "Subject", {"Colour": "red"})
    with pytest.raises(UnknownColumn, match="Colour"):
        catalog.query(DOMAIN, "Subject", columns=["Colour"])


def test_foreign_key_to_missing_row(catalog: Catalog) -> None:
    with pytest.raises(ForeignKeyError, match="1-ZZZZ"):
        catalog.apply(Batch([Insert(ML_SCHEMA, "Execution", [{"Workflow": "1-ZZZZ"}])]))
    with pytest.raises(ForeignKeyError, match="Martian"):
        catalog.apply(Batch([Insert(DOMAIN, "Subject", [_subject("a", Species="Martian")])]))


def test_duplicate_key(catalog: Catalog) -> None:
    catalog.apply(Batch([Insert(DOMAIN, "Subject", [_subject("dup")])]))
    with pytest.raises(ConflictError, match="dup"):
        catalog.apply(Batch([Insert(DOMAIN, "Subject", [_subject("dup")])]))


def test_failed_batch_leaves_no_partial_rows(catalog: Catalog) -> None:
    if not isinstance(catalog, SQLiteCatalog):
        # ERMrest: each request is atomic, a batch of several requests is not
        with pytest.raises(ConflictError):
            catalog.apply(Batch([Insert(DOMAIN, "Subject", [_subject("x"), _subject("y"), _subject("x")])]))
        assert catalog.query(DOMAIN, "Subject") == []
        return
    before = catalog.snapshot()
    with pytest.raises(ConflictError):
        catalog.apply(
            Batch(
                [
                    Insert(ML_SCHEMA, "Workflow", [{"Name": "partial"}], ["w"]),
                    Insert(DOMAIN, "Subject", [_subject("x"), _subject("x")]),
                ]
            )
        )
    assert catalog.query(ML_SCHEMA, "Workflow", {"Name": "partial"}) == []
    assert catalog.query(DOMAIN, "Subject") == []
    assert catalog.snapshot() == before


def test_malformed_rid(catalog: Catalog) -> None:
    with pytest.raises(InvalidRID, match="not a rid"):
        catalog.resolve_rid(RID("not a rid"))
    with pytest.raises(RIDNotFound, match="1-ZZZZ"):
        catalog.resolve_rid(RID("1-ZZZZ"))


def test_not_null(catalog: Catalog) -> None:
    with pytest.raises((ValidationError, ConflictError)):
        catalog.apply(Batch([Insert(DOMAIN, "Subject", [{"Age": 3}])]))


def test_rids_never_reused(catalog: Catalog) -> None:
    first = catalog.apply(Batch([Insert(DOMAIN, "Subject", [_subject("a")], ["a"])])).rids["a"]
    catalog.apply(Batch([Delete(DOMAIN, "Subject", "RID", [first])]))
    second = catalog.apply(Batch([Insert(DOMAIN, "Subject", [_subject("a")], ["a"])])).rids["a"]
    assert second != first


def test_snapshot_excludes_later_inserts(catalog: Catalog) -> None:
    catalog.apply(Batch([Insert(DOMAIN, "Subject", [_subject("early")])]))
    snap = catalog.snapshot()
    catalog.apply(Batch([Insert(DOMAIN, "Subject", [_subject("late")])]))
    assert [r["Name"] for r in catalog.query(DOMAIN, "Subject", snapshot=snap)] == ["early"]
    assert len(catalog.query(DOMAIN, "Subject")) == 2


def test_create_tables_refreshes_model(catalog: Catalog) -> None:
    from deriva_ml.catalog.schema import asset_table

    subject = catalog.model().table(DOMAIN, "Subject")
    assert subject is not None
    tables = asset_table(DOMAIN, "Image", [], [subject])
    catalog.create_tables(tables)
    model = catalog.model()
    for t in tables:
        assert model.table(DOMAIN, t.name) is not None
    res = catalog.apply(
        Batch(
            [
                Insert(DOMAIN, "Subject", [_subject("s")], ["s"]),
                Insert(DOMAIN, "Image", [{"URL": "/hatrac/x", "Length": 3, "MD5": "m", "Subject": Ref("s")}], ["i"]),
                Insert(ML_SCHEMA, "Workflow", [{"Name": "w"}], ["w"]),
                Insert(ML_SCHEMA, "Execution", [{"Workflow": Ref("w")}], ["e"]),
                Insert(DOMAIN, "Image_Execution", [{"Image": Ref("i"), "Execution": Ref("e"), "Asset_Role": "Output"}]),
                Insert(DOMAIN, "Image_Asset_Type", [{"Image": Ref("i"), "Asset_Type": "Model_File"}]),
            ]
        )
    )
    assert catalog.resolve_rid(res.rids["i"]) == (DOMAIN, "Image")


# ---------------------------------------------------------------------------------------- query_linked


def _workflows_and_executions(catalog: Catalog) -> tuple[list[RID], dict[str, RID]]:
    """Workflows w0..w3; executions: two Running on w0 (a duplicate reference), Running on w1, Failed on
    w2, Running without a workflow; w3 is referenced by nothing."""
    res = catalog.apply(
        Batch(
            [
                Insert(ML_SCHEMA, "Workflow", [{"Name": f"w{i}"} for i in range(4)], [f"w{i}" for i in range(4)]),
                Insert(
                    ML_SCHEMA,
                    "Execution",
                    [
                        {"Workflow": Ref("w0"), "Status_Detail": "Running"},
                        {"Workflow": Ref("w0"), "Status_Detail": "Running"},
                        {"Workflow": Ref("w1"), "Status_Detail": "Running"},
                        {"Workflow": Ref("w2"), "Status_Detail": "Failed"},
                        {"Workflow": None, "Status_Detail": "Running"},
                    ],
                    ["e0", "e1", "e2", "e3", "e4"],
                ),
            ]
        )
    )
    return [res.rids[f"w{i}"] for i in range(4)], res.rids


def _via_workflow(catalog: Catalog, where: Any, **kw: Any) -> list[dict[str, Any]]:
    return catalog.query_linked(
        ML_SCHEMA, "Execution", where, via="Workflow", target_schema=ML_SCHEMA, target_table="Workflow", **kw
    )


def test_query_linked_returns_distinct_target_rows(catalog: Catalog) -> None:
    w, _ = _workflows_and_executions(catalog)
    got = _via_workflow(catalog, {"Status_Detail": "Running"})
    # w0 is referenced twice and appears once; the execution without a workflow references nothing
    assert [r["RID"] for r in got] == sorted([w[0], w[1]])
    assert got == catalog.query(ML_SCHEMA, "Workflow", {"RID": [w[0], w[1]]}, order_by=["RID"])
    assert [r["RID"] for r in _via_workflow(catalog, None)] == sorted(w[:3])


def test_query_linked_filters(catalog: Catalog) -> None:
    w, e = _workflows_and_executions(catalog)
    assert [r["RID"] for r in _via_workflow(catalog, {"Status_Detail": "Failed"})] == [w[2]]
    assert [r["RID"] for r in _via_workflow(catalog, {"Status_Detail": ["Failed", "Done"]})] == [w[2]]
    assert [r["RID"] for r in _via_workflow(catalog, {"RID": [e["e1"], e["e3"]], "Status_Detail": "Running"})] == [w[0]]
    assert [r["RID"] for r in _via_workflow(catalog, {"Workflow": w[1]})] == [w[1]]
    assert [r["RID"] for r in _via_workflow(catalog, {"Description": None, "Status_Detail": "Failed"})] == [w[2]]
    assert _via_workflow(catalog, {"Status_Detail": "Running"}, columns=["Name"]) == [
        {"Name": r["Name"]} for r in _via_workflow(catalog, {"Status_Detail": "Running"})
    ]
    assert _via_workflow(catalog, None, columns=["RID", "Name"], limit=2) == [
        {"RID": r["RID"], "Name": r["Name"]} for r in _via_workflow(catalog, None)[:2]
    ]


def test_query_linked_empty_results(catalog: Catalog) -> None:
    _workflows_and_executions(catalog)
    assert _via_workflow(catalog, {"Status_Detail": "Aborted"}) == []
    assert _via_workflow(catalog, {"Workflow": None}) == []  # matches a row, but it references nothing
    before = getattr(catalog, "request_count", None)
    assert _via_workflow(catalog, {"Status_Detail": []}) == []  # can match nothing: no request is needed
    assert _via_workflow(catalog, {"Status_Detail": "Running"}, limit=0) == []
    assert _via_workflow(catalog, {"Status_Detail": "Running"}, limit=-1) == []
    assert getattr(catalog, "request_count", None) == before


def test_query_linked_non_rid_target_column(catalog: Catalog) -> None:
    odd = "a/b;c=d&e,f(g) h%i?j@k:l"
    catalog.apply(
        Batch(
            [
                Insert(DOMAIN, "Species", [{"Name": n, "Description": n} for n in ("cat", "dog", odd, "eel")]),
                Insert(
                    DOMAIN,
                    "Subject",
                    [
                        _subject("s1", Species="cat", Age=1),
                        _subject("s2", Species="cat", Age=1),
                        _subject("s3", Species=odd, Age=1),
                        _subject(odd, Species="dog", Age=2),
                        _subject("s5", Age=1),
                    ],
                ),
            ]
        )
    )
    species = catalog.query_linked(
        DOMAIN, "Subject", {"Age": 1}, via="Species", target_schema=DOMAIN, target_table="Species",
        target_column="Name", columns=["Name"],
    )  # fmt: skip
    assert sorted(r["Name"] for r in species) == sorted(["cat", odd])
    got = catalog.query_linked(
        DOMAIN, "Subject", {"Name": odd}, via="Species", target_schema=DOMAIN, target_table="Species",
        target_column="Name",
    )  # fmt: skip
    assert [r["Name"] for r in got] == ["dog"] and got[0]["ID"].endswith(got[0]["RID"])


def test_query_linked_reads_snapshot(catalog: Catalog) -> None:
    w, _ = _workflows_and_executions(catalog)
    snap = catalog.snapshot()
    catalog.apply(
        Batch(
            [
                Insert(ML_SCHEMA, "Workflow", [{"Name": "late"}], ["late"]),
                Insert(
                    ML_SCHEMA,
                    "Execution",
                    [
                        {"Workflow": Ref("late"), "Status_Detail": "Running"},
                        {"Workflow": w[3], "Status_Detail": "Running"},
                    ],
                ),
            ]
        )
    )
    now = _via_workflow(catalog, {"Status_Detail": "Running"})
    assert len(now) == 4 and w[3] in {r["RID"] for r in now}
    then = _via_workflow(catalog, {"Status_Detail": "Running"}, snapshot=snap)
    assert [r["RID"] for r in then] == sorted([w[0], w[1]])
    assert _via_workflow(catalog, {"Status_Detail": "Running"}, columns=["Name"], snapshot=snap) == [
        {"Name": r["Name"]} for r in then
    ]


def test_query_linked_names_with_spaces_and_dashes(catalog: Catalog) -> None:
    table = plain_table(DOMAIN, "Odd Table-1", [ColumnDef("Who Is-it", "text"), ColumnDef("Kind", "text")])
    catalog.create_tables([table])
    subjects = catalog.apply(Batch([Insert(DOMAIN, "Subject", [_subject("a"), _subject("b")])])).inserted[0]
    a, b = (r["RID"] for r in subjects)
    catalog.apply(
        Batch([Insert(DOMAIN, table.name, [{"Who Is-it": a, "Kind": "k;1"}, {"Who Is-it": b, "Kind": "k 2"}])])
    )
    got = catalog.query_linked(
        DOMAIN, table.name, {"Kind": "k;1"}, via="Who Is-it", target_schema=DOMAIN, target_table="Subject",
        columns=["Name"],
    )  # fmt: skip
    assert got == [{"Name": "a"}]


def test_query_linked_unknown_names(catalog: Catalog) -> None:
    with pytest.raises(UnknownTable, match="Nope"):
        catalog.query_linked(ML_SCHEMA, "Nope", via="Workflow", target_schema=ML_SCHEMA, target_table="Workflow")
    with pytest.raises(UnknownTable, match="Nope"):
        catalog.query_linked(ML_SCHEMA, "Execution", via="Workflow", target_schema=ML_SCHEMA, target_table="Nope")
    with pytest.raises(UnknownColumn, match="Colour"):
        _via_workflow(catalog, {"Colour": "red"})
    with pytest.raises(UnknownColumn, match="Colour"):
        _via_workflow(catalog, None, columns=["Colour"])
    with pytest.raises(UnknownColumn, match="Colour"):
        catalog.query_linked(ML_SCHEMA, "Execution", via="Colour", target_schema=ML_SCHEMA, target_table="Workflow")
    with pytest.raises(UnknownColumn, match="Colour"):
        _via_workflow(catalog, None, target_column="Colour")
