"""Round trips against an ERMrest + Hatrac server: a small scenario's request count is bounded.

The reference package makes 838 requests for a small scenario; the brief's goal is a quarter of that. This
scenario — a fresh process, a new workflow, an execution reading a 10-image dataset (materialized bag) and
one cached asset, five progress updates, ten outputs, upload — must stay within 80 requests in all.
"""

from __future__ import annotations

from collections import Counter

import pytest

from deriva_ml import DerivaML
from deriva_ml.asset.aux_classes import AssetSpec
from deriva_ml.dataset.aux_classes import DatasetSpec
from deriva_ml.execution import ExecutionConfiguration
from deriva_ml.testing import add_domain_schema


@pytest.fixture
def servers():
    from ermrest_fake import FakeErmrest
    from hatrac_server import HatracTestServer

    with FakeErmrest() as er, HatracTestServer() as hs:
        yield er, hs


def test_small_scenario_request_count(servers, tmp_path):
    from hatrac_server import make_store

    from deriva_ml.catalog.ermrest import ErmrestCatalog, create_ml_catalog

    er, hs = servers
    cat = create_ml_catalog(er.host, "p", scheme="http", credential={})
    ml = DerivaML(er.host, cat.catalog_id, catalog=cat, store=make_store(hs), home=tmp_path)
    add_domain_schema(ml)
    wf = ml.create_workflow(name="setup", workflow_type="Training", url="https://x/s.py", checksum="s")
    with ml.create_execution(ExecutionConfiguration(workflow=wf)) as exe:
        for i in range(10):
            exe.asset_file_path("Image", f"i{i}.png").write_bytes(bytes([i]) * 100)
        exe.asset_file_path("Model", "w.pt").write_bytes(b"w")
    up = exe.upload_execution_outputs()
    images = [a.rid for a in up[f"{ml.domain_schema}/Image"]]
    weights = up[f"{ml.domain_schema}/Model"][0].rid
    ds = ml.create_dataset(["Training"], "d")
    ds.add_dataset_members(images)
    ml.close()

    e0, h0 = len(er.log), len(hs.requests)
    ml = DerivaML(
        er.host,
        cat.catalog_id,
        catalog=ErmrestCatalog(er.host, cat.catalog_id, scheme="http", credential={}),
        store=make_store(hs),
        home=tmp_path,
        cache_dir=tmp_path / "fresh-cache",
    )
    wf = ml.create_workflow(name="train", workflow_type="Training", url="https://x/t.py", checksum="t")
    config = ExecutionConfiguration(
        workflow=wf, datasets=[DatasetSpec(rid=ds.dataset_rid)], assets=[AssetSpec(rid=weights, cache=True)]
    )
    with ml.create_execution(config) as exe:
        for epoch in range(5):
            exe.update_status("Running", f"epoch {epoch}")
        for i in range(10):
            exe.asset_file_path("Model", f"out{i}.bin").write_bytes(bytes([i]) * 10)
    exe.upload_execution_outputs()
    ermrest = er.log[e0:]
    hatrac = hs.requests[h0:]
    by_kind = Counter((m, p.split("?")[0].split("/")[4]) for m, p, _ in ermrest)
    print(f"ERMrest {len(ermrest)}: {dict(by_kind)}; Hatrac {len(hatrac)}: {dict(Counter(r.method for r in hatrac))}")
    assert sum(1 for m, p, _ in ermrest if m == "GET" and p.split("?")[0].endswith("/schema")) == 1
    assert len(ermrest) + len(hatrac) <= 80
    # per output file: HEAD + PUT on Hatrac and no per-file catalog request
    assert len(hatrac) <= 2 * 13 + 11  # 10 outputs + 3 metadata files, 10 images + 1 asset fetched
