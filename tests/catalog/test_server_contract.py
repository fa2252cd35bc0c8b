"""The ERMrest contract deriva_ml relies on (docs/server-contract.md), as raw HTTP requests.

Every test runs against the fake (``ermrest_fake.py``) and, when ``DERIVA_ML_TEST_HOST`` is set, against the
real server with the same requests: where the two disagree, the fake is wrong.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from catalog_support import live_credential

_SYS = [
    {"name": n, "type": {"typename": t}, "nullok": n in ("RCB", "RMB")}
    for n, t in (
        ("RID", "ermrest_rid"),
        ("RCT", "ermrest_rct"),
        ("RMT", "ermrest_rmt"),
        ("RCB", "ermrest_rcb"),
        ("RMB", "ermrest_rmb"),
    )
]


def _table(name: str, columns: list[dict[str, Any]], keys: list[list[str]]) -> dict[str, Any]:
    return {
        "schema_name": "s",
        "table_name": name,
        "column_definitions": _SYS + columns,
        "keys": [{"unique_columns": ["RID"]}, *({"unique_columns": k} for k in keys)],
    }


class Server:
    """One new catalog on a server, addressed with raw requests."""

    def __init__(self, base: str, session: requests.Session) -> None:
        self.session = session
        r = session.post(f"{base}/ermrest/catalog")
        assert r.status_code == 201, r.text
        self.root = base
        self.cid = str(r.json()["id"])
        self.path = f"/ermrest/catalog/{self.cid}"
        cols = [
            {"name": "Name", "type": {"typename": "text"}, "nullok": False},
            {"name": "Age", "type": {"typename": "int4"}, "nullok": True},
        ]
        r = self.post("/schema", [{"schema_name": "s"}, _table("T", cols, [["Name"]])])
        assert r.status_code == 201, r.text

    def url(self, path: str, snap: str | None = None) -> str:
        return self.root + self.path + (f"@{snap}" if snap else "") + path

    def get(self, path: str, snap: str | None = None) -> requests.Response:
        return self.session.get(self.url(path, snap))

    def post(self, path: str, body: Any) -> requests.Response:
        return self.session.post(self.url(path), json=body)

    def put(self, path: str, body: Any) -> requests.Response:
        return self.session.put(self.url(path), json=body)

    def snaptime(self) -> str:
        return str(self.get("/").json()["snaptime"])


@pytest.fixture(params=["fake", "live"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    session = requests.Session()
    if request.param == "fake":
        from ermrest_fake import FakeErmrest

        with FakeErmrest() as fake:
            yield Server(f"http://{fake.host}", session)
        return
    host = os.environ.get("DERIVA_ML_TEST_HOST")
    if not host:
        pytest.skip("DERIVA_ML_TEST_HOST is not set")
    cred = live_credential() or {}
    if "cookie" in cred:
        name, _, value = cred["cookie"].partition("=")
        session.cookies.set(name, value)
    elif "bearer-token" in cred:
        session.headers["Authorization"] = f"Bearer {cred['bearer-token']}"
    yield Server(f"https://{host}", session)


INSERT = "/entity/s:T?defaults=RID,RCT,RMT,RCB,RMB"


def _long_filter(server: Server, total: int) -> str:
    """``/entity/s:T/Name=x...`` whose whole request path is ``total`` bytes."""
    head = "/entity/s:T/Name="
    return head + "x" * (total - len(server.path) - len(head))


def test_url_length_limits(server: Server) -> None:
    assert server.get(_long_filter(server, 4000)).status_code == 200
    r = server.get(_long_filter(server, 4100))
    assert r.status_code == 404 and "html" in r.headers["content-type"]
    r = server.get(_long_filter(server, 8300))
    assert r.status_code == 414 and "html" in r.headers["content-type"]


def test_unknown_table_or_column_is_409(server: Server) -> None:
    r = server.get("/entity/s:Nope")
    assert r.status_code == 409 and "Table Nope does not exist in schema s." in r.text
    r = server.get("/entity/s:T/Nope=1")
    assert r.status_code == 409 and "Requested column Nope does not exist in table T." in r.text


def test_table_absent_at_a_snapshot_is_409(server: Server) -> None:
    before = server.snaptime()
    cols = [{"name": "X", "type": {"typename": "text"}, "nullok": True}]
    assert server.post("/schema", [_table("U", cols, [])]).status_code == 201
    assert server.get("/entity/s:U").status_code == 200
    for path in ("/entity/s:U", "/attribute/s:U/X", "/entity/s:U/X=1/(X)=(s:T:Name)"):
        r = server.get(path, snap=before)
        assert r.status_code == 409 and "Table U does not exist in schema s." in r.text, path


def test_model_at_a_snapshot_and_a_column_added_later(server: Server) -> None:
    """``@SNAP/schema`` is the model then; a column added since (``POST /schema/s/table/T/column``, 201) is
    absent from it, from ``@SNAP/entity`` rows, and naming it at the snapshot is 409."""
    assert server.post(INSERT, [{"Name": "a", "Age": 1}]).status_code == 200
    before = server.snaptime()
    cols = [{"name": "X", "type": {"typename": "text"}, "nullok": True}]
    assert server.post("/schema", [_table("U", cols, [])]).status_code == 201
    r = server.post("/schema/s/table/T/column", {"name": "W", "type": {"typename": "int4"}})
    assert r.status_code == 201 and r.json()["name"] == "W"
    after = server.snaptime()
    assert after != before
    then, now = server.get("/schema", snap=before).json(), server.get("/schema").json()
    assert "U" not in then["schemas"]["s"]["tables"] and "U" in now["schemas"]["s"]["tables"]
    names = [[c["name"] for c in m["schemas"]["s"]["tables"]["T"]["column_definitions"]] for m in (then, now)]
    assert "W" not in names[0] and "W" in names[1]
    latest = server.get("/schema", snap=after).json()  # the same model (rights differ: a snapshot is read-only)
    assert sorted(latest["schemas"]["s"]["tables"]) == sorted(now["schemas"]["s"]["tables"])
    assert "W" not in server.get("/entity/s:T", snap=before).json()[0]
    assert server.get("/entity/s:T").json()[0]["W"] is None
    for path in ("/attribute/s:T/W", "/entity/s:T/W=1"):
        r = server.get(path, snap=before)
        assert r.status_code == 409 and "Requested column W does not exist in table T." in r.text, path
    assert server.get("/schema", snap="not-a-snapshot!").status_code == 400


def test_attribute_sorted_on_a_column_not_projected_is_400(server: Server) -> None:
    r = server.get("/attribute/s:T/Name@sort(Age)")
    assert r.status_code == 400 and 'Sort key "Age" not among output columns' in r.text
    assert server.get("/attribute/s:T/Name@sort(RID)").status_code == 400
    assert server.get("/attribute/s:T/Name,Age@sort(Age)").status_code == 200


def test_update_of_a_missing_key_is_200_with_the_rows_updated(server: Server) -> None:
    assert server.post(INSERT, [{"Name": "a", "Age": 1}]).status_code == 200
    r = server.put("/attributegroup/s:T/Name;Age", [{"Name": "zz", "Age": 3}])
    assert r.status_code == 200 and r.json() == []
    r = server.put("/attributegroup/s:T/Name;Age", [{"Name": "zz", "Age": 3}, {"Name": "a", "Age": 5}])
    assert r.status_code == 200 and r.json() == [{"Name": "a", "Age": 5}]


def test_null_in_not_null_is_409_and_wrong_type_400(server: Server) -> None:
    r = server.post(INSERT, [{"Name": None, "Age": 1}])
    assert r.status_code == 409 and "violates not-null constraint" in r.text
    r = server.post(INSERT, [{"Name": "c", "Age": "x"}])
    assert r.status_code == 400 and "invalid input syntax for type" in r.text
    r = server.get("/entity/s:T/Age=x")
    assert r.status_code == 400 and "Invalid int4" in r.text


def test_rids_are_short_and_rcb_is_the_user(server: Server) -> None:
    row = server.post(INSERT, [{"Name": "r", "Age": 1}]).json()[0]
    assert len(row["RID"]) <= 4 and "-" not in row["RID"]  # e.g. 1S8 on a fresh catalog
    assert isinstance(row["RCB"], str) and row["RCB"] and row["RCB"] == row["RMB"]


def test_delete_of_nothing_is_404(server: Server) -> None:
    r = server.session.delete(server.url("/entity/s:T/Name=nothing"))
    assert r.status_code == 404 and "text/plain" in r.headers["content-type"]
