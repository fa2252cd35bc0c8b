"""What the ERMrest adapter puts on the wire, against the ERMrest subset in ermrest_fake.py (127.0.0.1)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests
from catalog_support import DOMAIN, domain_tables
from ermrest_fake import DEFAULT_LIMIT, FakeErmrest

from deriva_ml.catalog.ermrest import ErmrestCatalog, create_ml_catalog, table_document, table_from_document
from deriva_ml.catalog.port import ML_SCHEMA
from deriva_ml.catalog.schema import ML_TABLES
from deriva_ml.core.effects import Batch, Delete, Insert, Update
from deriva_ml.core.errors import (
    CatalogBusy,
    ConflictError,
    ForeignKeyError,
    NotFound,
    PermissionDenied,
    RIDNotFound,
)

FAST = {"retry_read": 0, "retry_connect": 0, "retry_backoff_factor": 0}


@pytest.fixture
def cat(ermrest_server: FakeErmrest) -> ErmrestCatalog:
    c = create_ml_catalog(ermrest_server.host, DOMAIN, scheme="http", credential={}, session_config=FAST)
    c.create_tables(domain_tables())
    ermrest_server.log.clear()
    return c


def test_table_documents_round_trip() -> None:
    import attrs

    for t in ML_TABLES:
        back = table_from_document(table_document(t))
        unnamed = attrs.evolve(
            back,
            keys=[attrs.evolve(k, name=None) for k in back.keys],
            foreign_keys=[attrs.evolve(fk, name=None) for fk in back.foreign_keys],
        )
        assert unnamed == t
    doc = table_document(ML_TABLES[0])
    assert {c["name"] for c in doc["column_definitions"]} >= {"RID", "RCT", "RMT", "RCB", "RMB", "Synonyms"}
    syn = next(c for c in doc["column_definitions"] if c["name"] == "Synonyms")
    assert syn["type"] == {"typename": "text[]", "is_array": True, "base_type": {"typename": "text"}}


def test_create_ml_catalog_requests(ermrest_server: FakeErmrest) -> None:
    c = create_ml_catalog(ermrest_server.host, "proj", scheme="http", credential={}, session_config=FAST)
    methods = [(m, p.split("?")[0]) for m, p, _ in ermrest_server.log]
    assert methods[:4] == [
        ("POST", "/ermrest/catalog"),
        ("GET", "/ermrest/catalog/1/schema"),
        ("POST", "/ermrest/catalog/1/schema"),
        ("GET", "/ermrest/catalog/1/schema"),
    ]
    ddl = ermrest_server.log[2][2]
    assert {"schema_name": "deriva-ml", "comment": "", "annotations": {}} in ddl
    assert any(d.get("schema_name") == "proj" and "table_name" not in d for d in ddl)
    assert c.request_count == len(ermrest_server.log) == 4 + 4  # one seed POST per vocabulary


def test_batching_and_model_fetched_once(cat: ErmrestCatalog, ermrest_server: FakeErmrest) -> None:
    rows = [{"Name": f"s{i}"} for i in range(2500)]
    cat.apply(Batch([Insert(DOMAIN, "Subject", rows)]))
    posts = [(p, b) for m, p, b in ermrest_server.log if m == "POST"]
    assert [len(b) for _, b in posts] == [1000, 1000, 500]
    assert all(
        p.startswith("/ermrest/catalog/1/entity/test-domain:Subject?defaults=RID,RCT,RMT,RCB,RMB,") for p, _ in posts
    )
    for _ in range(5):
        cat.query(DOMAIN, "Subject", {"Name": "s1"})
    assert ermrest_server.count("GET", "/schema") == 0


def test_query_urls(cat: ErmrestCatalog, ermrest_server: FakeErmrest) -> None:
    cat.query(DOMAIN, "Subject", {"Name": ["a b", "c/d"], "Age": 3}, columns=["Name"], order_by=["Name"], limit=5)
    cat.query(DOMAIN, "Subject", {"Age": None})
    snap = cat.snapshot()
    cat.query(DOMAIN, "Subject", snapshot=snap)
    paths = [p for m, p, _ in ermrest_server.log if m == "GET"]
    assert (
        paths[0]
        == "/ermrest/catalog/1/attribute/test-domain:Subject/Name=a%20b;Name=c%2Fd/Age=3/Name@sort(Name)?limit=5"
    )
    assert paths[1] == "/ermrest/catalog/1/entity/test-domain:Subject/Age::null::@sort(RID)?limit=none"
    assert paths[2] == "/ermrest/catalog/1/"
    assert paths[3] == f"/ermrest/catalog/1@{snap}/entity/test-domain:Subject@sort(RID)?limit=none"


def test_query_linked_urls(cat: ErmrestCatalog, ermrest_server: FakeErmrest) -> None:
    """One GET: the filtered source path, then a link by explicit column mapping (naming.md), sorted by RID."""
    link = dict(via="Species", target_schema=DOMAIN, target_table="Species", target_column="Name")
    cat.query_linked(DOMAIN, "Subject", {"Name": ["a b", "c/d"], "Age": 3}, **link)
    cat.query_linked(DOMAIN, "Subject", {"Age": None}, columns=["Name"], limit=5, **link)
    snap = cat.snapshot()
    cat.query_linked(DOMAIN, "Subject", columns=["RID", "Description"], snapshot=snap, **link)
    paths = [p for m, p, _ in ermrest_server.log if m == "GET"]
    assert paths[0] == (
        "/ermrest/catalog/1/entity/test-domain:Subject/Name=a%20b;Name=c%2Fd/Age=3"
        "/(Species)=(test-domain:Species:Name)@sort(RID)?limit=none"
    )
    assert paths[1] == (
        "/ermrest/catalog/1/attribute/test-domain:Subject/Age::null::"
        "/(Species)=(test-domain:Species:Name)/Name,RID@sort(RID)?limit=5"
    )
    assert paths[3] == (
        f"/ermrest/catalog/1@{snap}/attribute/test-domain:Subject"
        "/(Species)=(test-domain:Species:Name)/RID,Description@sort(RID)?limit=none"
    )


def test_linked_path_denotes_distinct_target_entities(cat: ErmrestCatalog, ermrest_server: FakeErmrest) -> None:
    """naming.md: the path denotes the right-most table's entities; joins filter but never duplicate rows.
    The server's default_limit applies to a linked path like any other, so the adapter sends limit=none."""
    species = [{"Name": f"sp{i:03}", "Description": "d"} for i in range(DEFAULT_LIMIT + 5)]
    subjects = [{"Name": f"s{i:03}-{j}", "Species": f"sp{i:03}"} for i in range(DEFAULT_LIMIT + 5) for j in (0, 1)]
    cat.apply(Batch([Insert(DOMAIN, "Species", species), Insert(DOMAIN, "Subject", subjects)]))
    path = "/entity/test-domain:Subject/(Species)=(test-domain:Species:Name)@sort(RID)"
    assert len(_raw(ermrest_server, "GET", path).json()) == DEFAULT_LIMIT
    rows = _raw(ermrest_server, "GET", path + "?limit=none").json()
    assert len(rows) == DEFAULT_LIMIT + 5 and set(rows[0]) >= {"RID", "Name", "Description", "ID"}
    ermrest_server.log.clear()
    link = dict(via="Species", target_schema=DOMAIN, target_table="Species", target_column="Name")
    assert len(cat.query_linked(DOMAIN, "Subject", **link)) == DEFAULT_LIMIT + 5
    assert len(ermrest_server.log) == 1


def test_update_delete_resolve_urls(cat: ErmrestCatalog, ermrest_server: FakeErmrest) -> None:
    res = cat.apply(Batch([Insert(DOMAIN, "Subject", [{"Name": "a"}, {"Name": "b"}])]))
    rids = [r["RID"] for r in res.inserted[0]]
    cat.apply(Batch([Update(DOMAIN, "Subject", [{"RID": rids[0], "Age": 4}])]))
    cat.apply(Batch([Delete(DOMAIN, "Subject", "RID", rids)]))
    cat.resolve_rid(cat.query(ML_SCHEMA, "Asset_Role", columns=["RID"])[0]["RID"])
    log = [(m, p) for m, p, _ in ermrest_server.log]
    assert ("PUT", "/ermrest/catalog/1/attributegroup/test-domain:Subject/RID;Age") in log
    assert ("DELETE", f"/ermrest/catalog/1/entity/test-domain:Subject/RID={rids[0]};RID={rids[1]}") in log
    assert any(m == "GET" and "/entity_rid/" in p for m, p in log)


def test_on_conflict_skip_param(cat: ErmrestCatalog, ermrest_server: FakeErmrest) -> None:
    cat.apply(Batch([Insert(DOMAIN, "Subject", [{"Name": "a"}], on_conflict_skip=True)]))
    assert ermrest_server.log[-1][1].endswith("&onconflict=skip")


@pytest.mark.parametrize(
    ("status", "text", "error"),
    [
        (401, "Unauthorized", PermissionDenied),
        (403, "Forbidden", PermissionDenied),
        (409, 'violates foreign key constraint "x" Key (Species)=(Q) is not present', ForeignKeyError),
        (409, "duplicate key value violates unique constraint", ConflictError),
        (503, "Service Unavailable", CatalogBusy),
    ],
)
def test_error_mapping(cat: ErmrestCatalog, ermrest_server: FakeErmrest, status: int, text: str, error: type) -> None:
    ermrest_server.fail_next.append((status, text))
    with pytest.raises(error, match="Subject"):
        cat.apply(Batch([Insert(DOMAIN, "Subject", [{"Name": "z"}])]))


def test_import_deriva_ml_does_not_import_deriva() -> None:
    code = (
        "import sys, deriva_ml, deriva_ml.catalog.sqlite, deriva_ml.catalog.journal; assert 'deriva' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- documented ERMrest behaviour the adapter relies on (pinned in the fake) -----------------------------
# Sources: informatics-isi-edu/ermrest docs/api-doc/data/rest.md, data/naming.md and ermrest/ermpath/resource.py.


def _raw(server: FakeErmrest, method: str, path: str, body: object = None) -> requests.Response:
    return requests.request(method, f"http://{server.host}/ermrest/catalog/1{path}", json=body, timeout=10)


def test_query_without_limit_spells_out_limit_none(cat: ErmrestCatalog, ermrest_server: FakeErmrest) -> None:
    """ERMrest applies its configured default_limit (100 by default in apicore.py) when ?limit= is absent."""
    cat.apply(Batch([Insert(DOMAIN, "Subject", [{"Name": f"s{i:03}"} for i in range(DEFAULT_LIMIT + 20)])]))
    assert len(_raw(ermrest_server, "GET", "/entity/test-domain:Subject").json()) == DEFAULT_LIMIT
    assert len(cat.query(DOMAIN, "Subject")) == DEFAULT_LIMIT + 20
    assert len(cat.query(DOMAIN, "Subject", columns=["Name"], order_by=["Name"])) == DEFAULT_LIMIT + 20


def test_insert_absent_columns_are_null_unless_listed_in_defaults(
    cat: ErmrestCatalog, ermrest_server: FakeErmrest
) -> None:
    """JSON input: a column absent from the rows and not in ?defaults= is stored as NULL, not its default."""
    ds = _raw(ermrest_server, "POST", "/entity/deriva-ml:Dataset?defaults=RID", [{"Description": "d"}]).json()[0]
    path = "/entity/deriva-ml:Dataset_Version"
    row = {"Dataset": ds["RID"], "Description": "x"}
    assert _raw(ermrest_server, "POST", path, [row]).json()[0]["Version"] is None
    row2 = {"Dataset": ds["RID"], "Description": "y"}
    assert _raw(ermrest_server, "POST", path + "?defaults=Version", [row2]).json()[0]["Version"] == "0.1.0"
    # the adapter lists every absent column in ?defaults=, so the column default applies
    ds2 = cat.apply(Batch([Insert(ML_SCHEMA, "Dataset", [{"Description": "e"}])])).inserted[0][0]
    res = cat.apply(Batch([Insert(ML_SCHEMA, "Dataset_Version", [{"Dataset": ds2["RID"], "Description": "z"}])]))
    assert res.inserted[0][0]["Version"] == "0.1.0"
    assert "defaults=RID,RCT,RMT,RCB,RMB," in ermrest_server.log[-1][1]


def test_system_columns_are_always_defaulted(ermrest_server: FakeErmrest, cat: ErmrestCatalog) -> None:
    """rest.md: RID, RCT, RMT, RCB, RMB 'are implicitly supplied with default values during entity creation'."""
    r = _raw(ermrest_server, "POST", "/entity/test-domain:Subject", [{"Name": "a", "RID": "ZZZZ"}])
    assert r.status_code == 200 and r.json()[0]["RID"] != "ZZZZ"
    assert set(r.json()[0]) >= {"RID", "RCT", "RMT", "RCB", "RMB", "Name", "Age"}  # whole rows come back


def test_insert_needs_one_non_defaulting_column(cat: ErmrestCatalog, ermrest_server: FakeErmrest) -> None:
    cols = "RID,RCT,RMT,RCB,RMB,Workflow,Description,Duration,Status,Status_Detail"
    r = _raw(ermrest_server, "POST", f"/entity/deriva-ml:Execution?defaults={cols}", [{}])
    assert r.status_code == 409 and "at least one non-defaulting column" in r.text
    res = cat.apply(Batch([Insert(ML_SCHEMA, "Execution", [{}], labels=["e"])]))  # an empty row still works
    assert res.rids["e"] == res.inserted[0][0]["RID"]
    body = ermrest_server.log[-1][2]
    assert len(body) == 1 and list(body[0].values()) == [None]


def test_on_conflict_skip_response_and_duplicates_in_one_request(
    cat: ErmrestCatalog, ermrest_server: FakeErmrest
) -> None:
    """onconflict=skip is INSERT .. ON CONFLICT DO NOTHING: skipped rows are absent from the response;
    rows sharing key values within one request are refused (400) before that, skip or not."""
    first = cat.apply(Batch([Insert(DOMAIN, "Subject", [{"Name": "a"}], labels=["a"])])).rids["a"]
    r = _raw(ermrest_server, "POST", "/entity/test-domain:Subject?onconflict=skip", [{"Name": "a"}, {"Name": "b"}])
    assert [x["Name"] for x in r.json()] == ["b"]
    r = _raw(ermrest_server, "POST", "/entity/test-domain:Subject?onconflict=skip", [{"Name": "c"}, {"Name": "c"}])
    assert r.status_code == 400 and "share the same unique key" in r.text
    ermrest_server.log.clear()
    rows = [{"Name": "d"}, {"Name": "a"}, {"Name": "d"}]
    res = cat.apply(Batch([Insert(DOMAIN, "Subject", rows, labels=["d1", "a", "d2"], on_conflict_skip=True)]))
    assert [x["Name"] for x in res.inserted[0]] == ["d"]
    assert res.rids["d1"] == res.rids["d2"] and res.rids["a"] == first
    assert [len(b) for m, _, b in ermrest_server.log if m == "POST"] == [2]  # the repeat is not sent
    with pytest.raises(ConflictError, match="share the same unique key"):
        cat.apply(Batch([Insert(DOMAIN, "Subject", [{"Name": "e"}, {"Name": "e"}])]))


def test_update_of_missing_key_is_an_error(cat: ErmrestCatalog, ermrest_server: FakeErmrest) -> None:
    """rest.md says an unmatched key 'will cause an error'; the real server (measured) skips that row: 200, and
    the row is left out of the response. The adapter raises for it either way."""
    rid = cat.apply(Batch([Insert(DOMAIN, "Subject", [{"Name": "a"}], labels=["a"])])).rids["a"]
    r = _raw(ermrest_server, "PUT", "/attributegroup/test-domain:Subject/RID;Age", [{"RID": "1-ZZZZ", "Age": 1}])
    assert r.status_code == 200 and r.json() == []
    r = _raw(ermrest_server, "PUT", "/attributegroup/test-domain:Subject/RID;Age", [{"RID": rid, "Age": 5}])
    assert r.status_code == 200 and r.json() == [{"RID": rid, "Age": 5}]
    with pytest.raises(RIDNotFound):
        cat.apply(Batch([Update(DOMAIN, "Subject", [{"RID": rid, "Age": 6}, {"RID": "1-ZZZZ", "Age": 7}])]))
    assert cat.query(DOMAIN, "Subject", {"RID": rid}, columns=["Age"]) == [{"Age": 6}]  # the matched row was updated
    with pytest.raises(NotFound):
        cat.apply(Batch([Update(DOMAIN, "Subject", [{"Name": "nobody", "Age": 1}], key=("Name",))]))


def test_delete_without_match_and_resolution_of_deleted_rids(cat: ErmrestCatalog, ermrest_server: FakeErmrest) -> None:
    """DELETE of an empty entity set is 404; entity_rid of a deleted row is 200 with deleted_at."""
    assert _raw(ermrest_server, "DELETE", "/entity/test-domain:Subject/Name=nobody").status_code == 404
    cat.apply(Batch([Delete(DOMAIN, "Subject", "Name", ["nobody"])]))  # no error
    rid = cat.apply(Batch([Insert(DOMAIN, "Subject", [{"Name": "a"}], labels=["a"])])).rids["a"]
    assert cat.resolve_rid(rid) == (DOMAIN, "Subject")
    cat.apply(Batch([Delete(DOMAIN, "Subject", "RID", [rid])]))
    doc = _raw(ermrest_server, "GET", f"/entity_rid/{rid}").json()
    assert doc["table_name"] == "Subject" and doc["deleted_at"] and doc["last_visible_snaptime"]
    with pytest.raises(RIDNotFound):
        cat.resolve_rid(rid)
    assert _raw(ermrest_server, "GET", "/entity_rid/1-ZZZZ").status_code == 404
