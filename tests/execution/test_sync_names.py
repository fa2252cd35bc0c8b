"""Sync into a target whose Hatrac once deleted an object's content-addressed name: the store keeps the
bytes under ``<md5>-<n>.<filename>``; sync maps the source URL to that URL (kept in its progress file,
reconciled on resume) and writes it in the rows, so MD5, length and file name stay the same (issue 12
leftovers, 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from deriva_ml import DerivaML
from deriva_ml.sync import sync
from deriva_ml.testing import add_domain_schema

from .test_sync import live, provenance, record_offline  # noqa: F401  (live: the fixture)


def _burn_name(ml: DerivaML, base: str, row: dict[str, Any], tmp: Path, session: Any = None) -> None:
    """Create the object ``row`` names on ``ml``'s Hatrac (at ``base``), then delete it: the name is gone
    for good."""
    blob = tmp / "burn.bin"
    blob.write_bytes(b"bytes once stored under this name")
    table = row["URL"].split("/")[2]
    first = row["URL"].rsplit("/", 1)[1]
    ml.store.put(blob, table=table, filename=first.split(".", 1)[1])  # creates the table's namespace
    if session is None:
        session = requests.Session()
        session.trust_env = False
    # some bytes once stored under exactly the row's name, then deleted
    r = session.put(base + row["URL"], data=b"other bytes", headers={"Content-Type": "application/octet-stream"})
    assert r.status_code in (200, 201), r.text
    assert session.delete(base + row["URL"]).status_code in (200, 204)
    assert session.head(base + row["URL"]).status_code in (404, 409)


def _mapped(prov: dict[str, Any], url_map: dict[str, str]) -> dict[str, Any]:
    assets = {
        t: sorted((f, url_map.get(u, u), md5, n, role) for f, u, md5, n, role in rows)
        for t, rows in prov["assets"].items()
    }
    return {**prov, "assets": assets}


def test_sync_maps_a_deleted_name_to_the_targets_alternative(tmp_path: Path, live: Any) -> None:  # noqa: F811
    target, er, hs = live
    offline = DerivaML("local", "offline", home=tmp_path / "home")
    add_domain_schema(offline)
    rid = record_offline(offline, "a")
    (model,) = offline.catalog.query(offline.domain_schema, "Model")
    _burn_name(target, hs.url, model, tmp_path)

    report = sync(offline, target)
    moved = report.target_url(model["URL"])
    head, _, last = model["URL"].rpartition("/")
    md5, _, filename = last.partition(".")
    assert moved == f"{head}/{md5}-1.{filename}" and dict(report.url_map) == {model["URL"]: moved}
    new_rid = report.target_rid(rid)
    # identical provenance: the same file name, length and MD5; only the URL is the target's
    assert provenance(target, new_rid) == _mapped(provenance(offline, rid), dict(report.url_map))
    (tmodel,) = target.catalog.query(target.domain_schema, "Model")
    assert (tmodel["URL"], tmodel["MD5"], tmodel["Length"], tmodel["Filename"]) == (
        moved,
        model["MD5"],
        model["Length"],
        model["Filename"],
    )
    got = tmp_path / "got.bin"
    target.store.get(tmodel["URL"], got, md5=tmodel["MD5"])
    assert got.read_bytes() == b"weights a"

    # a second sync sends nothing
    writes = sum(1 for m, _p, _ in er.log if m in ("POST", "PUT", "DELETE"))
    hatrac_puts = sum(1 for r in hs.requests if r.method == "PUT")
    again = sync(offline, target)
    assert again.entries_applied == 0 and again.objects_copied == 0
    assert sum(1 for m, _p, _ in er.log if m in ("POST", "PUT", "DELETE")) == writes
    assert sum(1 for r in hs.requests if r.method == "PUT") == hatrac_puts

    # later offline work producing the same object (linked to the same asset row): the map is kept in
    # the progress file, nothing is copied again
    with offline.create_execution(offline_config(offline)) as exe:
        exe.asset_file_path("Model", "model a.tar.gz").write_bytes(b"weights a")
    exe.upload_execution_outputs()
    third = sync(offline, target)
    assert third.entries_applied > 0 and third.objects_copied == 2  # configuration.json, environment snapshot
    models = target.catalog.query(target.domain_schema, "Model")
    assert [m["URL"] for m in models] == [moved]
    assert len(target.catalog.query(target.domain_schema, "Model_Execution")) == 2
    assert third.target_url(model["URL"]) == moved


def offline_config(ml: DerivaML) -> Any:
    from deriva_ml.execution import ExecutionConfiguration
    from deriva_ml.testing import make_workflow

    return ExecutionConfiguration(workflow=make_workflow(), description="again")


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", ["object_put:1", "object:1", "inflight:1", "write:1"])
def test_killed_sync_with_a_moved_name_completes_on_rerun(tmp_path: Path, kill_at: str) -> None:
    """Killed right after the object was stored under the alternative name (before the map was saved),
    after it was saved, and around the rows' write: the rerun finds the same alternative, writes each row
    once, and a further run is a no-op."""
    from ermrest_fake import FakeErmrest
    from hatrac_server import HatracTestServer, make_store

    from deriva_ml.catalog.ermrest import ErmrestCatalog, create_ml_catalog

    from .test_sync_crash import run_child

    home = tmp_path / "home"
    offline = DerivaML("local", "offline", home=home)
    add_domain_schema(offline)
    rid = record_offline(offline, "a")
    (model,) = offline.catalog.query(offline.domain_schema, "Model")
    want = provenance(offline, rid)
    offline.close()
    with FakeErmrest() as er, HatracTestServer() as hs:
        cat = create_ml_catalog(er.host, "offline", scheme="http", credential={})
        target = DerivaML(er.host, cat.catalog_id, catalog=cat, store=make_store(hs), home=tmp_path / "t")
        _burn_name(target, hs.url, model, tmp_path)
        spec = {
            "home": str(home),
            "catalog": "offline",
            "target": {"kind": "http", "host": er.host, "catalog": cat.catalog_id, "hatrac": hs.url},
        }
        rc, _ = run_child(spec, kill_at)
        assert rc != 0  # killed
        rc, report = run_child(spec)
        assert rc == 0, report
        assert report is not None
        moved = report["url_map"][model["URL"]]
        assert "-1." in moved
        rc, again = run_child(spec)
        assert rc == 0 and again is not None
        assert again["entries_applied"] == 0 and again["objects_copied"] == 0
        assert again["url_map"] == {model["URL"]: moved}
        target.close()
        cat = ErmrestCatalog(er.host, cat.catalog_id, scheme="http", credential={})  # the model as synced
        target = DerivaML(er.host, cat.catalog_id, catalog=cat, store=make_store(hs), home=tmp_path / "t")
        new_rid = report["rid_map"].get(rid) or again["rid_map"][rid]
        assert provenance(target, new_rid) == _mapped(want, {model["URL"]: moved})
        assert len(target.catalog.query(target.domain_schema, "Model")) == 1
        assert len(target.catalog.query("deriva-ml", "Execution")) == 1
        from urllib.parse import unquote

        names = [n for n in hs.objects if n.startswith(f"/hatrac/Model/{model['MD5']}")]
        assert names == [unquote(moved)]  # stored once, under the first alternative
        target.close()


def test_sync_maps_a_deleted_name_live(tmp_path: Path) -> None:
    """Once against the real Hatrac: a name created and deleted there is refused for good (409), the store
    falls back to ``<md5>-1.<name>`` and sync writes that URL with the same MD5, length and file name."""
    from live_support import live_credential, require_live, unique_token

    from deriva_ml.catalog.ermrest import ErmrestCatalog, create_ml_catalog
    from deriva_ml.store.hatrac import HatracObjectStore

    host = require_live()
    cred = live_credential()
    offline = DerivaML("local", "offline", home=tmp_path / "home")
    add_domain_schema(offline)
    rid = record_offline(offline, unique_token())  # unique bytes: a name never used on the server before
    (model,) = offline.catalog.query(offline.domain_schema, "Model")
    cat = create_ml_catalog(host, "offline", credential=cred)
    store = HatracObjectStore(host, credential=cred)
    target = DerivaML(host, cat.catalog_id, catalog=cat, store=store, home=tmp_path / "t")
    _burn_name(target, f"https://{host}", model, tmp_path, session=store._session)
    report = sync(offline, target)
    moved = report.target_url(model["URL"])
    head, _, last = model["URL"].rpartition("/")
    md5, _, filename = last.partition(".")
    assert moved == f"{head}/{md5}-1.{filename}"
    target.close()
    fresh = DerivaML(
        host,
        cat.catalog_id,
        catalog=ErmrestCatalog(host, cat.catalog_id, credential=cred),
        store=HatracObjectStore(host, credential=cred),
        home=tmp_path / "t2",
    )
    try:
        assert provenance(fresh, report.target_rid(rid)) == _mapped(provenance(offline, rid), {model["URL"]: moved})
        got = tmp_path / "got.bin"
        (tmodel,) = fresh.catalog.query(fresh.domain_schema, "Model")
        fresh.store.get(tmodel["URL"], got, md5=tmodel["MD5"])
        assert (
            got.read_bytes()
            == (offline.execution_dir(rid) / "outputs" / "Model").joinpath(model["Filename"]).read_bytes()
        )
        again = sync(offline, fresh)
        assert again.entries_applied == 0 and again.objects_copied == 0
    finally:
        fresh.close()
        offline.close()
