"""The ERMrest URL forms the data API sends, as raw HTTP requests to the fake and (with DERIVA_ML_TEST_HOST) to
the real server: filter operators, parentheses, negation, cross-column disjunction, ``@after`` paging,
``/aggregate/`` counts, several links, filters after a link, ``entity_rid`` of a deleted row at an earlier
snapshot, errors. Each answer is checked against the same expectation on both (measured on the lab 2026-11-30)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "catalog"))
from test_server_contract import Server, server  # noqa: F401 - the fixture is used by name

U = {
    "schema_name": "s",
    "table_name": "U",
    "column_definitions": [
        *(
            {"name": n, "type": {"typename": t}, "nullok": n in ("RCB", "RMB")}
            for n, t in (
                ("RID", "ermrest_rid"),
                ("RCT", "ermrest_rct"),
                ("RMT", "ermrest_rmt"),
                ("RCB", "ermrest_rcb"),
                ("RMB", "ermrest_rmb"),
            )
        ),
        {"name": "Tag", "type": {"typename": "text"}, "nullok": True},
        {"name": "T", "type": {"typename": "text"}, "nullok": True},
    ],
    "keys": [{"unique_columns": ["RID"]}],
    "foreign_keys": [
        {
            "foreign_key_columns": [{"schema_name": "s", "table_name": "U", "column_name": "T"}],
            "referenced_columns": [{"schema_name": "s", "table_name": "T", "column_name": "RID"}],
        }
    ],
}


@pytest.fixture
def data(server: Server) -> dict[str, Any]:  # noqa: F811
    assert server.post("/schema", [U]).status_code == 201
    r = server.post(
        "/entity/s:T?defaults=RID,RCT,RMT,RCB,RMB",
        [{"Name": f"s{i}", "Age": None if i == 4 else i} for i in range(10)],
    )
    assert r.status_code == 200, r.text
    t = {row["Name"]: row["RID"] for row in r.json()}
    r = server.post(
        "/entity/s:U?defaults=RID,RCT,RMT,RCB,RMB", [{"Tag": f"x{i}", "T": t[f"s{i % 3}"]} for i in range(6)]
    )
    assert r.status_code == 200, r.text
    u = {row["Tag"]: row["RID"] for row in r.json()}
    return {"server": server, "t": t, "u": u}


def _names(rows: list[dict[str, Any]], key: str = "Name") -> list[Any]:
    return [r[key] for r in rows]


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("/entity/s:T/Age::gt::5@sort(RID)?limit=none", ["s6", "s7", "s8", "s9"]),
        ("/entity/s:T/Age::leq::1@sort(RID)?limit=none", ["s0", "s1"]),
        ("/entity/s:T/(Age::lt::2&Name=s1);Age::geq::8@sort(RID)?limit=none", ["s1", "s8", "s9"]),
        ("/entity/s:T/Age::geq::8;(Age::lt::2&Name=s1)@sort(RID)?limit=none", ["s1", "s8", "s9"]),
        ("/entity/s:T/!(Age::lt::8)@sort(RID)?limit=none", ["s8", "s9"]),  # NULL is not "not < 8"
        ("/entity/s:T/!Age::lt::8;Age::null::@sort(RID)?limit=none", ["s4", "s8", "s9"]),
        ("/entity/s:T/Age::null::;Name=s3@sort(RID)?limit=none", ["s3", "s4"]),
        ("/entity/s:T/Age::gt::1/Name=s2;Name=s3/RID::null::@sort(RID)?limit=none", []),
        ("/attribute/s:T/Age::gt::6/Name,RID@sort(RID)?limit=none", ["s7", "s8", "s9"]),
        ("/entity/s:U/Tag=x0;Tag=x3/(T)=(s:T:RID)/Age::geq::0@sort(RID)?limit=none", ["s0"]),
        ("/attribute/s:U/Tag=x1/(T)=(s:T:RID)/(RID)=(s:U:T)/Tag,RID@sort(RID)?limit=none", None),
    ],
)
def test_filter_language_and_paths(data: dict[str, Any], path: str, names: list[str] | None) -> None:
    r = data["server"].get(path)
    assert r.status_code == 200, r.text
    if names is None:  # the two-link path: every U row of the T row that x1 references
        assert sorted(_names(r.json(), "Tag")) == ["x1", "x4"]
    else:
        assert _names(r.json()) == names


def test_after_paging_and_counts(data: dict[str, Any]) -> None:
    s, t = data["server"], data["t"]
    order = sorted(t.values())
    names = {v: k for k, v in t.items()}
    r = s.get(f"/entity/s:T@sort(RID)@after({order[2]})?limit=2")
    assert [names[x["RID"]] for x in r.json()] == [names[order[3]], names[order[4]]]
    r = s.get(f"/attribute/s:T/Age::geq::0/RID,Name@sort(RID)@after({order[7]})?limit=5")
    assert [x["RID"] for x in r.json()] == order[8:]
    assert s.get("/aggregate/s:T/Age::gt::5/cnt:=cnt(*)").json() == [{"cnt": 4}]
    assert s.get("/aggregate/s:T/cnt:=cnt_d(RID)").json() == [{"cnt": 10}]
    # a join counts the distinct rows of the last table (three T rows are referenced by six U rows)
    assert s.get("/aggregate/s:U/(T)=(s:T:RID)/cnt:=cnt_d(RID)").json() == [{"cnt": 3}]


def test_deleted_row_at_an_earlier_snapshot(data: dict[str, Any]) -> None:
    s, u = data["server"], data["u"]
    before = s.snaptime()
    assert s.session.delete(s.url(f"/entity/s:U/RID={u['x0']}")).status_code == 204
    assert s.get(f"/entity/s:U/RID={u['x0']}").json() == []
    old = s.get(f"/entity/s:U/RID={u['x0']}", before).json()
    assert [x["Tag"] for x in old] == ["x0"]
    r = s.get(f"/entity_rid/{u['x0']}", before)
    assert r.status_code == 200 and (r.json()["schema_name"], r.json()["table_name"]) == ("s", "U")
    assert s.get("/aggregate/s:U/cnt:=cnt(*)", before).json() == [{"cnt": 6}]


@pytest.mark.parametrize(
    ("path", "status", "text"),
    [
        ("/entity/s:T/Nope::gt::1@sort(RID)?limit=none", 409, "Nope"),
        ("/entity/s:T/Age::gt::x@sort(RID)?limit=none", 400, "int4"),
        ("/aggregate/s:T/Nope::lt::1/cnt:=cnt(*)", 409, "Nope"),
    ],
)
def test_errors_of_the_new_forms(data: dict[str, Any], path: str, status: int, text: str) -> None:
    r = data["server"].get(path)
    assert r.status_code == status and text in r.text, (r.status_code, r.text[:300])
