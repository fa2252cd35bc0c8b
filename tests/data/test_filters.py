"""The filter algebra (pure): construction, evaluation with SQL NULL semantics, ERMrest rendering, plans."""

from __future__ import annotations

from typing import Any

import pytest

from deriva_ml.catalog.ermrest import _path, _render_filter
from deriva_ml.core.errors import UnknownColumn, ValidationError
from deriva_ml.core.filters import And, Cmp, In, Or, PathQuery, Step, as_filter, col, matches, split_largest_in
from deriva_ml.core.schema_defs import ColumnDef, TableDef
from deriva_ml.data._plans import plan_delete, plan_insert, plan_update

ROWS = [
    {"RID": "1", "Name": "a", "Age": 1},
    {"RID": "2", "Name": "b", "Age": 5},
    {"RID": "3", "Name": "c", "Age": None},
]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (col("Age") > 1, ["2"]),
        (col("Age") >= 1, ["1", "2"]),
        (col("Age") < 5, ["1"]),
        (col("Age") <= 5, ["1", "2"]),
        (col("Age") == None, ["3"]),  # noqa: E711
        (col("Age") != 1, ["2"]),  # NULL is neither 1 nor not 1
        (col("Name").in_(["a", "c"]), ["1", "3"]),
        (col("Age").in_([1, None]), ["1", "3"]),
        (col("Name").in_([]), []),
        ((col("Age") < 2) | (col("Name") == "c"), ["1", "3"]),
        ((col("Age") > 0) & ~(col("Name") == "a"), ["2"]),
        (~((col("Age") > 0) & (col("Name") == "a")), ["2", "3"]),  # NULL AND false is false
        ({"Name": ["a", "b"], "Age": 5}, ["2"]),
        (None, ["1", "2", "3"]),
    ],
)
def test_matches_uses_sql_null_semantics(flt: Any, expected: list[str]) -> None:
    f = as_filter(flt)
    assert [r["RID"] for r in ROWS if matches(f, r)] == expected


@pytest.mark.parametrize(
    ("flt", "url"),
    [
        (col("Age") > 3, "Age::gt::3"),
        (col("Age") <= 3, "Age::leq::3"),
        (col("Name") == "a b", "Name=a%20b"),
        (col("Name") == None, "Name::null::"),  # noqa: E711
        (col("Name").in_(["a", None]), "Name=a;Name::null::"),
        ((col("Age") < 2) & (col("Name") == "s1") | (col("Age") >= 8), "(Age::lt::2&Name=s1);Age::geq::8"),
        (~(col("Age") < 8), "!Age::lt::8"),
        (~((col("Age") < 8) | (col("Age") == None)), "!(Age::lt::8;Age::null::)"),  # noqa: E711
        ((col("Age") > 1) & col("Name").in_(["a", "b"]), "Age::gt::1&(Name=a;Name=b)"),
        (Or(()), None),
        (In("Name", ()), None),
        (col("Flag") == True, "Flag=true"),  # noqa: E712
    ],
)
def test_ermrest_rendering(flt: Any, url: str | None) -> None:
    """Every form here was sent to the lab's ERMrest (2026-11-30) and answered as documented."""
    assert _render_filter(flt) == url


def test_path_rendering_links_and_top_level_conjunction() -> None:
    q = PathQuery(
        [
            Step("t", "Subject", And((col("Age") > 1, col("Name").in_(["a", "b"]), In("Name", ())))),
            Step("t", "Sample", col("Tag") == "x", "RID", "Subject"),
        ]
    )
    assert _path(q) == "t:Subject/Age::gt::1/Name=a;Name=b/RID::null::/(RID)=(t:Sample:Subject)/Tag=x"


def test_split_largest_in_keeps_the_selection() -> None:
    f = And((col("Age") > 0, col("Name").in_([f"n{i}" for i in range(10)])))
    parts = split_largest_in(f, 3)
    assert parts is not None and len(parts) == 3
    rows = [{"Name": f"n{i}", "Age": i} for i in range(12)]
    assert sorted(r["Name"] for r in rows for p in parts if matches(p, r)) == sorted(
        r["Name"] for r in rows if matches(f, r)
    )
    assert split_largest_in(col("Age") > 1, 2) is None


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Cmp("Age", "like", 1), "operator 'like' is not known"),
        (lambda: col("Age") > None, "only == and != compare with None"),
        (lambda: col("Name").in_("abc"), "not the string"),
        (lambda: as_filter(col("Age")), "is a column, not a filter"),
        (lambda: as_filter(42), "not a filter"),
        (lambda: PathQuery([]), "at least one table"),
        (lambda: PathQuery([Step("t", "A"), Step("t", "B")]), "needs via and target_column"),
        (lambda: PathQuery([Step("t", "A")], after="x/y"), "is not a RID"),
    ],
)
def test_bad_filters_name_the_problem(make: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make()


SUBJECT = TableDef("t", "Subject", [ColumnDef("Name", "text"), ColumnDef("Age", "int4")])
ML_TABLE = TableDef("deriva-ml", "Execution", [ColumnDef("Status", "text")])


@pytest.mark.parametrize(
    ("plan", "error", "message"),
    [
        (lambda: plan_insert(SUBJECT, [{"Nme": "x"}]), UnknownColumn, "Nme"),
        (lambda: plan_insert(SUBJECT, [{"RID": "1-0000", "Name": "x"}]), ValidationError, "system columns"),
        (lambda: plan_insert(ML_TABLE, [{"Status": "x"}]), ValidationError, "own API"),
        (lambda: plan_insert(SUBJECT, ["x"]), ValidationError, "must be a dict"),
        (lambda: plan_update(SUBJECT, [{"Name": "x"}]), ValidationError, "has no RID"),
        (lambda: plan_update(SUBJECT, [{"RID": "1-0000"}]), ValidationError, "sets no column"),
        (lambda: plan_update(SUBJECT, [{"RID": "1-0000", "RMT": "x"}]), ValidationError, "system columns"),
        (lambda: plan_delete(SUBJECT, ["not a rid"]), ValidationError, "not a rid"),
        (lambda: plan_delete(ML_TABLE, ["1-0000"]), ValidationError, "own API"),
    ],
)
def test_write_plans_refuse_bad_rows(plan: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        plan()


def test_write_plans_are_one_effect() -> None:
    b = plan_insert(SUBJECT, [{"Name": "a"}, {"Name": "b", "Age": 2}])
    assert len(b.effects) == 1 and len(b.effects[0].rows) == 2  # type: ignore[union-attr]
    u = plan_update(SUBJECT, {"RID": "1-0000", "Age": 3})
    assert u.effects[0].rows[0] == {"RID": "1-0000", "Age": 3}  # type: ignore[union-attr]
    d = plan_delete(SUBJECT, ["1-0000", "1-0000", "1-0001"])
    assert d.effects[0].values == ("1-0000", "1-0001")  # type: ignore[union-attr]
    assert plan_delete(SUBJECT, []).effects == ()
