"""What the ERMrest adapter puts on the wire, against the ERMrest subset in ermrest_fake.py (127.0.0.1)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from catalog_support import DOMAIN, domain_tables
from ermrest_fake import FakeErmrest

from deriva_ml.catalog.ermrest import ErmrestCatalog, create_ml_catalog, table_document, table_from_document
from deriva_ml.catalog.port import ML_SCHEMA
from deriva_ml.catalog.schema import ML_TABLES
from deriva_ml.core.effects import Batch, Delete, Insert, Update
from deriva_ml.core.errors import CatalogBusy, ConflictError, ForeignKeyError, PermissionDenied

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
    assert paths[1] == "/ermrest/catalog/1/entity/test-domain:Subject/Age::null::@sort(RID)"
    assert paths[2] == "/ermrest/catalog/1/"
    assert paths[3] == f"/ermrest/catalog/1@{snap}/entity/test-domain:Subject@sort(RID)"


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
