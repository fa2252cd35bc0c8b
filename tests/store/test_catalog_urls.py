"""Object URLs that come from catalog rows, end to end through DerivaML (issue 12.1 and issue 10.4).

Every place that turns a catalog value into a request goes through the store's trust gate:
``download_asset`` (uncached and through the asset cache), bag creation and materialisation
(fetch.txt), and the restore-time fetch of an execution's configuration.json. A real HTTP server on
127.0.0.1 plays the foreign host and records whether it received anything.

The compatibility half reads rows laid out the way the reference package (deriva-ml 1.x + deriva-py)
writes them: objects uploaded under ``/hatrac/<Table>/<md5>.<file_name>`` with deriva-py's
``Content-Disposition`` and recorded with the version Hatrac returned (``...:<VERSION>``), next to
its ``Filename``/``MD5``/``Length`` columns. Both halves run on the fakes and, with
``DERIVA_ML_TEST_HOST``, on a live server.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hatrac_server import HatracTestServer, live_credential, live_host
from test_url_trust import Recorder

from deriva_ml import DatasetSpec, DerivaML, ExecutionConfiguration
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.effects import Batch, Insert, Update
from deriva_ml.execution._lifecycle import fetch_configuration_json
from deriva_ml.store.hatrac import HatracObjectStore
from deriva_ml.store.names import UntrustedURL

_CATALOG_TESTS = Path(__file__).resolve().parents[1] / "catalog"
if str(_CATALOG_TESTS) not in sys.path:
    sys.path.insert(0, str(_CATALOG_TESTS))

DOMAIN = "t"


@pytest.fixture(autouse=True)
def _no_bdbag_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BDBAG_CONFIG_FILE", raising=False)


class World:
    """A DerivaML on a catalog + Hatrac pair, plus a raw session to write objects as deriva-py does."""

    def __init__(self, ml: DerivaML, hatrac_base: str, raw: Any) -> None:
        self.ml = ml
        self.hatrac_base = hatrac_base
        self.raw = raw

    def reference_upload(self, table: str, file_name: str, data: bytes) -> dict[str, Any]:
        """Store ``data`` as deriva-py's uploader does and return the row it would write."""
        md5 = hashlib.md5(data)
        path = f"/hatrac/{table}/{md5.hexdigest()}.{file_name}"  # its hatrac_uri template
        r = self.raw.put(
            self.hatrac_base + path + "?parents=true",
            data=data,
            headers={
                "Content-MD5": base64.b64encode(md5.digest()).decode(),
                "Content-Disposition": f"filename*=UTF-8''{file_name}",
                "Content-Type": "application/octet-stream",
            },
            timeout=30,
        )
        assert r.status_code == 201, r.text
        versioned = r.text.strip()  # deriva-py keeps the Location (versioned_urls=True)
        assert versioned.startswith(path + ":")
        return {"URL": versioned, "Filename": file_name, "MD5": md5.hexdigest(), "Length": len(data)}


@pytest.fixture(params=["fake", "live"])
def world(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    import requests

    from deriva_ml.catalog.ermrest import ErmrestCatalog, create_ml_catalog

    home = tmp_path / "home"
    monkeypatch.setenv("DERIVA_ML_HOME", str(home))
    if request.param == "fake":
        from ermrest_fake import FakeErmrest

        with FakeErmrest() as er, HatracTestServer() as hs:
            first = create_ml_catalog(er.host, DOMAIN, scheme="http", credential={})
            cat = ErmrestCatalog(er.host, first.catalog_id, scheme="http", credential={})
            first.close()
            store = HatracObjectStore(hs.url, credential={"bearer-token": "s3cret"}, jitter=None)
            ml = DerivaML(er.host, first.catalog_id, catalog=cat, store=store, home=home)
            raw = requests.Session()
            raw.trust_env = False
            yield World(ml, hs.url, raw)
            ml.close()
    else:
        host = live_host()
        if not host:
            pytest.skip("set DERIVA_ML_TEST_HOST to run against a live server")
        cred = live_credential()
        first = create_ml_catalog(host, DOMAIN, credential=cred)
        catalog_id = first.catalog_id
        first.close()
        ml = DerivaML(host, catalog_id, credential=cred, home=home)
        from hatrac_server import live_session

        yield World(ml, f"https://{host}", live_session())
        ml.close()


@pytest.fixture
def foreign() -> Iterator[Recorder]:
    r = Recorder()
    yield r
    r.close()


def _setup(world: World) -> None:
    world.ml.create_table("Subject")
    world.ml.create_asset("Image")


def _insert(world: World, table: str, rows: list[dict[str, Any]], schema: str = DOMAIN) -> list[str]:
    result = world.ml.catalog.apply(Batch([Insert(schema, table, rows)]))
    return [r["RID"] for r in result.inserted[0]]


def _execution(world: World) -> Any:
    wf = world.ml.create_workflow(
        name="URL trust",
        workflow_type="Training",
        description="object URLs from catalog rows",
        url="https://github.com/org/repo/blob/abc123/train.py",
        checksum="e5f6a7b8c9d0e5f6a7b8c9d0e5f6a7b8c9d0e5f6",
    )
    return world.ml.create_execution(ExecutionConfiguration(workflow=wf, description="urls"))


def _config_row(world: World) -> tuple[str, str, dict[str, Any]]:
    """An uploaded execution and its configuration.json row."""
    exe = _execution(world)
    with exe:
        pass
    exe.upload_execution_outputs()
    links = world.ml.catalog.query(ML_SCHEMA, "Execution_Metadata_Execution", {"Execution": exe.execution_rid})
    rows = world.ml.catalog.query(
        ML_SCHEMA,
        "Execution_Metadata",
        {"RID": [r["Execution_Metadata"] for r in links], "Filename": "configuration.json"},
    )
    assert len(rows) == 1
    return exe.execution_rid, rows[0]["RID"], rows[0]


# ---- issue 12.1: hostile URLs from rows never leave with the credential ------------------------------
def test_hostile_asset_urls_are_refused_everywhere(world: World, foreign: Recorder, tmp_path: Path) -> None:
    _setup(world)
    data = os.urandom(300)
    md5 = hashlib.md5(data).hexdigest()
    hostile = [
        f"http://{foreign.hostport}/hatrac/Image/{md5}.x.png",
        f"//{foreign.hostport}/hatrac/Image/{md5}.x.png",
        f"http://127.0.0.1@{foreign.hostport}/hatrac/Image/{md5}.x.png",
        f"/hatrac/Image/..%2F..%2F{md5}.x.png",
    ]
    rids = _insert(world, "Image", [{"URL": u, "Filename": "x.png", "MD5": md5, "Length": len(data)} for u in hostile])
    exe = _execution(world)
    for rid in rids:
        for cache in (False, True):
            with pytest.raises(UntrustedURL):
                exe.download_asset(rid, cache=cache)
    ds = world.ml.create_dataset("Training", "hostile")
    ds.add_dataset_members(rids)
    for materialize in (True, False):
        with pytest.raises(UntrustedURL):
            world.ml.download_dataset_bag(DatasetSpec(rid=ds.dataset_rid, materialize=materialize))
    exe_rid, meta_rid, _ = _config_row(world)
    world.ml.catalog.apply(Batch([Update(ML_SCHEMA, "Execution_Metadata", [{"RID": meta_rid, "URL": hostile[0]}])]))
    with pytest.raises(UntrustedURL):
        fetch_configuration_json(world.ml._services(), exe_rid)
    assert foreign.requests == []  # nothing reached the foreign host, so no credential either


# ---- issue 10.4: rows and objects written the way the reference package writes them ------------------
def test_reference_layout_rows_and_versioned_urls_are_read(world: World, tmp_path: Path) -> None:
    _setup(world)
    run = uuid.uuid4().hex[:8]  # live: names are never reused (a deleted name can never come back)
    files = {f"scan_{run}_{i}.png": os.urandom(1000 + i) for i in range(3)}
    rows = [world.reference_upload("Image", name, data) for name, data in files.items()]
    rids = _insert(world, "Image", rows)
    # download_asset, uncached and through the cache
    exe = _execution(world)
    for i, (rid, row) in enumerate(zip(rids, rows, strict=True)):
        path = exe.download_asset(rid, cache=i == 0)  # the first through the asset cache
        assert path.name == row["Filename"] and path.read_bytes() == files[row["Filename"]]
    # a materialised bag and a holey one
    ds = world.ml.create_dataset("Training", "reference assets")
    ds.add_dataset_members(rids)
    bag = world.ml.download_dataset_bag(DatasetSpec(rid=ds.dataset_rid))
    images = bag.list_dataset_members()["Image"]
    assert sorted(Path(r["Filename"]).read_bytes() for r in images) == sorted(files.values())
    holey = world.ml.download_dataset_bag(DatasetSpec(rid=ds.dataset_rid, materialize=False))
    fetch = (holey.path / "fetch.txt").read_text().splitlines()
    assert len(fetch) == 3 and all(":" in line.split("\t")[0].rsplit("/", 1)[1] for line in fetch)  # versions kept
    # restore-style fetch of a configuration.json whose URL is versioned, as the reference records it
    exe_rid, meta_rid, meta = _config_row(world)
    head = world.raw.head(world.hatrac_base + meta["URL"], timeout=30)
    versioned = head.headers["Content-Location"]
    assert versioned.startswith(meta["URL"] + ":")
    world.ml.catalog.apply(Batch([Update(ML_SCHEMA, "Execution_Metadata", [{"RID": meta_rid, "URL": versioned}])]))
    text = fetch_configuration_json(world.ml._services(), exe_rid)
    assert text is not None and '"description": "urls"' in text
