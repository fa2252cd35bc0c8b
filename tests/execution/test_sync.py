"""Offline replay: an execution recorded on the embedded catalog is synced into an ERMrest + Hatrac server."""

from __future__ import annotations

import pytest

from deriva_ml import DerivaML
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.execution import ExecutionConfiguration
from deriva_ml.sync import sync
from deriva_ml.testing import add_domain_schema, add_subjects, make_workflow


@pytest.fixture
def live(tmp_path):
    from ermrest_fake import FakeErmrest
    from hatrac_server import HatracTestServer, make_store

    from deriva_ml.catalog.ermrest import create_ml_catalog

    with FakeErmrest() as er, HatracTestServer() as hs:
        cat = create_ml_catalog(er.host, "offline", scheme="http", credential={})
        ml = DerivaML(er.host, cat.catalog_id, catalog=cat, store=make_store(hs), home=tmp_path / "live-home")
        yield ml, er, hs
        ml.close()


def record_offline(ml: DerivaML, tag: str) -> str:
    (subject,) = add_subjects(ml, [f"subject {tag}"])
    with ml.create_execution(ExecutionConfiguration(workflow=make_workflow(), description=f"offline {tag}")) as exe:
        exe.update_status("Running", "epoch 1")
        exe.asset_file_path("Model", f"model {tag}.tar.gz").write_bytes(f"weights {tag}".encode())
        exe.asset_file_path("Image", f"img {tag}.png", metadata={"Subject": subject}).write_bytes(tag.encode())
    exe.upload_execution_outputs()
    return exe.execution_rid


def provenance(ml: DerivaML, rid: str) -> dict:
    ex = ml.catalog.query(ML_SCHEMA, "Execution", {"RID": rid})[0]
    wf = ml.catalog.query(ML_SCHEMA, "Workflow", {"RID": ex["Workflow"]})[0]
    out = {}
    for schema, table in ((ml.domain_schema, "Model"), (ml.domain_schema, "Image"), (ML_SCHEMA, "Execution_Metadata")):
        links = ml.catalog.query(schema, f"{table}_Execution", {"Execution": rid})
        rows = ml.catalog.query(schema, table, {"RID": [x[table] for x in links]}) if links else []
        roles = {x[table]: x["Asset_Role"] for x in links}
        out[table] = sorted(
            (
                r["Filename"] if not r["Filename"].startswith("environment_snapshot") else "env",
                r["URL"] if not r["Filename"].startswith("environment_snapshot") else "",
                r["MD5"] if not r["Filename"].startswith("environment_snapshot") else "",
                r["Length"] if not r["Filename"].startswith("environment_snapshot") else 0,
                roles[r["RID"]],
            )
            for r in rows
        )
    return {
        "execution": (ex["Description"], ex["Status"], ex["Status_Detail"], ex["Duration"]),
        "workflow": (wf["Name"], wf["URL"], wf["Checksum"]),
        "assets": out,
    }


def test_offline_execution_syncs_with_identical_provenance(tmp_path, live):
    target, er, _hatrac = live
    offline = DerivaML("local", "offline", home=tmp_path / "home")
    add_domain_schema(offline)
    rid = record_offline(offline, "a")
    report = sync(offline, target)
    assert (
        report.entries_applied > 0 and report.objects_copied == 5
    )  # 2 outputs + configuration.json, uv.lock, snapshot
    new_rid = report.target_rid(rid)
    assert provenance(target, new_rid) == provenance(offline, rid)
    # the objects are in the target store under the same URLs, with the same bytes
    for row in target.catalog.query(target.domain_schema, "Model"):
        dest = tmp_path / "check.bin"
        target.store.get(row["URL"], dest, md5=row["MD5"])
        assert dest.read_bytes() == b"weights a"

    # a second sync sends nothing
    writes_before = sum(1 for m, _p, _ in er.log if m in ("POST", "PUT", "DELETE"))
    again = sync(offline, target)
    assert again.entries_applied == 0 and again.objects_copied == 0
    assert sum(1 for m, _p, _ in er.log if m in ("POST", "PUT", "DELETE")) == writes_before

    # more offline work later: only the new entries travel
    rid2 = record_offline(offline, "b")
    third = sync(offline, target)
    assert 0 < third.entries_applied < report.entries_applied
    assert provenance(target, third.target_rid(rid2)) == provenance(offline, rid2)
    assert len(target.catalog.query(ML_SCHEMA, "Workflow")) == 1
