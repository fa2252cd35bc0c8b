"""The canonical record read from real catalogs: the same run gives the same hash on every backend, the
record holds what the run read and wrote, and reading it costs a constant number of requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from live_support import http_log, unique_token

from deriva_ml import DerivaML
from deriva_ml.core.errors import RIDNotFound
from deriva_ml.provenance import canonical_record, gather_execution, provenance_hash
from provenance.prov_support import record_inputs, record_run, record_sweep, setup_domain


def _doc(ml: Any, rid: str, recurse: bool = False) -> dict[str, Any]:
    return canonical_record(gather_execution(ml.ports, ml._schema, rid, recurse=recurse))


def _leaves(value: Any) -> Any:
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def _embedded(tmp_path: Path, name: str = "ref") -> DerivaML:
    ml = DerivaML("local", name, home=tmp_path / f"home-{name}")
    setup_domain(ml)
    return ml


def test_record_holds_what_the_run_read_and_wrote(backend: Any) -> None:
    ml = backend()
    setup_domain(ml)
    token = unique_token()
    inputs = record_inputs(ml, token)
    rid = record_run(ml, token, inputs)
    doc = _doc(ml, rid)
    c, r = doc["content"], doc["record"]
    assert c["workflow"]["url"].endswith("/train.py") and c["workflow"]["checksum"]
    assert c["inputs"]["datasets"] == [
        {"description": f"training set {token}", "version": "0.2.0", "types": ["Training"]}
    ]
    assert [(a["table"], a["filename"]) for a in c["inputs"]["assets"]] == [("Model", "weights.pt")]
    outs = {(a["table"], a["filename"]): a for a in c["outputs"]["assets"]}
    assert set(outs) == {("Model", "model.tar.gz"), ("Image", "mask 0.png")}
    assert outs[("Model", "model.tar.gz")]["md5"] and outs[("Model", "model.tar.gz")]["types"] == ["Model"]
    assert c["outputs"]["datasets"] == [
        {"description": f"predictions {token}", "version": "0.1.0", "types": ["Labeled"]}
    ]
    (feature,) = c["outputs"]["features"]
    assert feature["table"] == "Execution_Subject_Quality"
    assert feature["values"] == [
        {
            "Feature_Name": "Quality",
            "Quality": "good 1",
            "Subject": {"table": "Subject", "row": {"Name": f"subject {token}"}},
        }
    ]
    assert c["configuration"]["config_choices"] == {"data": "tiny", "model": "small"}
    assert c["configuration"]["arguments"] == ["seed=1", "model=small"]
    env = c["environment"]
    assert env["python"] and env["system"] and env["machine"]
    # nothing catalog-specific in the hashed part: no RID, URL or snapshot of this catalog appears in it
    leaves = set(_leaves(c))
    for a in r["assets"]:
        assert a["rid"] not in leaves and a["url"] not in leaves
    for d in r["datasets"]:
        assert d["rid"] not in leaves and d["snapshot"] not in leaves
        assert d["snapshot"] or d["role"] == "Output"
    assert rid not in leaves and inputs["subject"] not in leaves
    assert r["status"] == "Completed" and r["rid"] == rid and doc["hash"] == provenance_hash(doc)


def test_same_run_same_hash_on_every_backend(backend: Any, tmp_path: Path) -> None:
    token = unique_token()
    ml = backend()
    setup_domain(ml)
    ref = _embedded(tmp_path)
    try:
        hashes = []
        for m in (ml, ref):
            rid = record_run(m, token, record_inputs(m, token))
            hashes.append(_doc(m, rid)["hash"])
        assert hashes[0] == hashes[1]
        # a different seed (different model bytes, arguments and feature value) is a different hash
        other = record_run(ref, token, record_inputs(ref, token + "x"), seed=2)
        assert _doc(ref, other)["hash"] != hashes[1]
    finally:
        ref.close()


def test_sweep_parent_nests_children(backend: Any, tmp_path: Path) -> None:
    token = unique_token()
    ml = backend()
    setup_domain(ml)
    parent = record_sweep(ml, token, record_inputs(ml, token), seeds=(1, 2))
    flat, deep = _doc(ml, parent), _doc(ml, parent, recurse=True)
    assert "children" not in flat["content"] and [c["sequence"] for c in flat["record"]["children"]] == [0, 1]
    kids = deep["content"]["children"]
    assert [k["sequence"] for k in kids] == [0, 1]
    assert [k["content"]["configuration"]["arguments"][0] for k in kids] == ["seed=1", "seed=2"]
    assert deep["hash"] != flat["hash"]
    assert [k["record"]["rid"] for k in deep["record"]["children"]] == [k["rid"] for k in flat["record"]["children"]]
    # the same sweep recorded on the embedded catalog has the same recursive hash
    ref = _embedded(tmp_path)
    try:
        again = record_sweep(ref, token, record_inputs(ref, token), seeds=(1, 2))
        assert _doc(ref, again, recurse=True)["hash"] == deep["hash"]
    finally:
        ref.close()


def test_unknown_rid_names_it(backend: Any) -> None:
    ml = backend()
    with pytest.raises(RIDNotFound, match="1-ZZZZ"):
        gather_execution(ml.ports, ml._schema, "1-ZZZZ")


@pytest.mark.parametrize("backend", ["ermrest+hatrac", "live"], indirect=True)
def test_requests_do_not_grow_with_outputs(backend: Any) -> None:
    """Gathering a run with 2 outputs and one with 30 sends the same requests (catalog and object store)."""
    ml = backend()
    setup_domain(ml)
    token = unique_token()
    inputs = record_inputs(ml, token)
    small = record_run(ml, token, inputs, n_outputs=2)
    big = record_run(ml, token + "b", inputs, n_outputs=30)
    counts = []
    for rid in (small, big):
        with http_log() as log:
            gather_execution(ml.ports, ml._schema, rid)
        counts.append(log.summary())
    assert counts[0] == counts[1]
    assert sum(v for k, v in counts[0].items() if "hatrac" in k) == 2  # configuration.json + environment
    assert sum(v for k, v in counts[0].items() if "ermrest" in k) <= 22


@pytest.mark.parametrize("backend", ["ermrest+hatrac", "live"], indirect=True)
def test_sync_into_a_server_keeps_the_hashes(backend: Any, tmp_path: Path) -> None:
    """Recorded offline, synced into an ERMrest + Hatrac server: the run's and the sweep's hashes are unchanged."""
    from deriva_ml.sync import sync

    token = unique_token()
    target = backend()
    source = _embedded(tmp_path, "offline")
    try:
        inputs = record_inputs(source, token)
        run = record_run(source, token, inputs)
        sweep = record_sweep(source, token, inputs, seeds=(1, 2))
        before = {rid: _doc(source, rid, recurse=True)["hash"] for rid in (run, sweep)}
        report = sync(source, target, progress=False)
        after = {rid: _doc(target, report.target_rid(rid), recurse=True)["hash"] for rid in (run, sweep)}
        if after != before:  # say what moved
            from deriva_ml.provenance import diff_records

            a = _doc(source, run, recurse=True)
            b = _doc(target, report.target_rid(run), recurse=True)
            print(diff_records(a, b).render())
        assert after == before
        assert report.target_rid(run) != run or target.catalog_id != source.catalog_id
    finally:
        source.close()
