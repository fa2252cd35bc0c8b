"""Standard exports: a Workflow Run RO-Crate valid under roc-validator's profile checks, and PROV-JSON that
round-trips through ``ProvDocument.deserialize`` and whose relations name only declared records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest
from live_support import unique_token

from deriva_ml.core.errors import ValidationError
from deriva_ml.provenance import canonical_record, export_prov, export_rocrate, gather_execution
from provenance.prov_support import record_inputs, record_sweep, setup_domain
from provenance.rocrate_offline import metadata, validate_crate
from provenance.test_canonical import base_facts

pytest.importorskip("rocrate_validator")


def _sweep_doc() -> dict[str, Any]:
    kids = tuple(
        (i, attrs.evolve(base_facts(), rid=f"1-C{i}", configuration={"argv": ["p", f"seed={i}"]})) for i in range(2)
    )
    return canonical_record(attrs.evolve(base_facts(), children=kids, recursed=True))


def _graph(path: Path) -> dict[str, dict[str, Any]]:
    return {e["@id"]: e for e in metadata(path)["@graph"]}


def _ids(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [x["@id"] for x in items if isinstance(x, dict)]


@pytest.mark.parametrize("profile", ["workflow-run-crate", "process-run-crate", "workflow-ro-crate"])
def test_rocrate_of_a_sweep_is_valid(tmp_path: Path, profile: str) -> None:
    code = tmp_path / "t.py"
    code.write_text("print('train')\n")
    out = export_rocrate(_sweep_doc(), tmp_path / "crate", workflow_files={"c1": code})
    assert validate_crate(out, profile) == []


def test_rocrate_structure(tmp_path: Path) -> None:
    doc = _sweep_doc()
    out = export_rocrate(doc, tmp_path / "crate", base_url="https://example.org")
    g = _graph(out)
    root = g["./"]
    assert {p["@id"] for p in root["conformsTo"]} >= {"https://w3id.org/ro/wfrun/workflow/0.5"}
    main = g[root["mainEntity"]["@id"]]
    assert set(main["@type"]) == {"File", "SoftwareSourceCode", "ComputationalWorkflow"}
    actions = {k: v for k, v in g.items() if v.get("@type") == "CreateAction"}
    assert set(actions) == {"#execution-1-E1", "#execution-1-C0", "#execution-1-C1"}
    parent = actions["#execution-1-E1"]
    assert parent["identifier"] == f"sha256:{doc['hash']}"
    assert parent["actionStatus"]["@id"] == "http://schema.org/CompletedActionStatus"
    assert all(actions[f"#execution-1-C{i}"]["isPartOf"]["@id"] == "#execution-1-E1" for i in range(2))
    results = [g[i] for i in _ids(parent["result"])]
    files = {r["name"]: r for r in results if r["@type"] == "File"}
    assert set(files) == {"model.pt", "mask.png"}
    assert files["model.pt"]["identifier"] == "md5:m1"
    assert "https://example.org/hatrac/Model/m1.model.pt" in _ids(parent["result"])
    objects = [g[i] for i in _ids(parent["object"])]
    assert {o["@type"] for o in objects} == {"Dataset", "File", "PropertyValue"}
    choice = next(o for o in objects if o.get("name") == "model")
    assert choice["value"] == "small" and g[choice["exampleOfWork"]["@id"]]["@type"] == "FormalParameter"


def test_rocrate_without_the_code_references_the_url(tmp_path: Path) -> None:
    """Without a local copy the workflow is a web-based entity; offline, the one check that fails is the one
    that must download it (documented in docs/exports.md)."""
    out = export_rocrate(_sweep_doc(), tmp_path / "crate")
    assert _graph(out)["./"]["mainEntity"]["@id"] == "https://g/x/blob/abc/t.py"
    issues = validate_crate(out, "workflow-run-crate")
    assert [i for i in issues if i != "not passed"] == [
        "Main Workflow file must exist: Main Workflow https://g/x/blob/abc/t.py not found in crate"
    ]
    assert validate_crate(out, "process-run-crate") == []


def test_rocrate_zip(tmp_path: Path) -> None:
    import zipfile

    out = export_rocrate(_sweep_doc(), tmp_path / "crate.zip")
    with zipfile.ZipFile(out) as z:
        assert "ro-crate-metadata.json" in z.namelist()


def _declared(doc: Any) -> set[str]:
    from prov.model import ProvActivity, ProvAgent, ProvEntity

    return {str(r.identifier) for r in doc.get_records((ProvEntity, ProvActivity, ProvAgent))}


def _check_prov(text: str, h: str) -> Any:
    from prov.model import ProvDocument, ProvRelation

    back = ProvDocument.deserialize(content=text, format="json")
    again = ProvDocument.deserialize(content=back.serialize(format="json"), format="json")
    assert back == again  # round trip
    assert back.unified() == back  # nothing declared twice
    declared = _declared(back)
    for rel in back.get_records(ProvRelation):
        for _, value in rel.formal_attributes[:2]:
            assert value is None or str(value) in declared, rel
    assert back.get_provn()  # serialises to PROV-N too
    from prov.model import ProvActivity

    hashes = [list(a.get_attribute("dml:provenance_hash")) for a in back.get_records(ProvActivity)]
    assert [h] in hashes
    return back


def test_prov_json_round_trips_and_relations_name_declared_records(tmp_path: Path) -> None:
    doc = _sweep_doc()
    text = export_prov(doc, tmp_path / "p.json")
    assert (tmp_path / "p.json").read_text() == text
    back = _check_prov(text, doc["hash"])
    data = json.loads(text)
    assert set(data["wasStartedBy"].values().__iter__().__next__()) >= {"prov:activity", "prov:starter"}
    starters = {v["prov:activity"]: v["prov:starter"] for v in data["wasStartedBy"].values()}
    assert starters == {"dml:execution/1-C0": "dml:execution/1-E1", "dml:execution/1-C1": "dml:execution/1-E1"}
    used = {v["prov:entity"] for v in data["used"].values() if v["prov:activity"] == "dml:execution/1-E1"}
    assert "dml:md5/m0/weights.pt" in used
    generated = {
        v["prov:entity"] for v in data["wasGeneratedBy"].values() if v["prov:activity"] == "dml:execution/1-E1"
    }
    assert generated == {"dml:md5/m1/model.pt", "dml:md5/m2/mask.png", "dml:dataset/1-D2/0.1.0"}
    assert len(back.get_records()) > 10


@pytest.mark.parametrize("bad", [{}, {"content": {}}])
def test_exports_refuse_what_is_not_a_canonical_document(bad: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="canonical provenance document"):
        export_prov(bad)
    with pytest.raises(ValidationError, match="canonical provenance document"):
        export_rocrate(bad, tmp_path / "x")


def test_exports_of_a_recorded_sweep(backend: Any, tmp_path: Path) -> None:
    """A sweep recorded on each backend exports to a valid crate and a round-tripping PROV document."""
    ml = backend()
    setup_domain(ml)
    token = unique_token()
    parent = record_sweep(ml, token, record_inputs(ml, token), seeds=(1, 2))
    doc = canonical_record(gather_execution(ml.ports, ml._schema, parent, recurse=True))
    code = tmp_path / "train.py"
    code.write_text("print('train')\n")
    files = {c["content"]["workflow"]["checksum"]: code for c in doc["content"]["children"]}
    files[doc["content"]["workflow"]["checksum"]] = code
    out = export_rocrate(doc, tmp_path / "crate", workflow_files=files)
    assert validate_crate(out, "workflow-run-crate") == []
    g = _graph(out)
    assert sum(1 for v in g.values() if v.get("@type") == "CreateAction") == 3
    _check_prov(export_prov(doc), doc["hash"])


def _metrics_doc() -> dict[str, Any]:
    series = {"loss": [[0, 0.5], [1, 0.25]], "accuracy": [[0, 0.6], [1, 0.8]]}
    return canonical_record(attrs.evolve(base_facts(), metrics={"format": "deriva-ml-metrics/1", "series": series}))


@pytest.mark.parametrize("profile", ["workflow-run-crate", "process-run-crate", "workflow-ro-crate"])
def test_metrics_are_in_a_valid_rocrate(tmp_path: Path, profile: str) -> None:
    code = tmp_path / "t.py"
    code.write_text("print('train')\n")
    out = export_rocrate(_metrics_doc(), tmp_path / "crate", workflow_files={"c1": code})
    assert validate_crate(out, profile) == []
    g = _graph(out)
    results = _ids(g["#execution-1-E1"]["result"])
    loss = g["#1-E1-metric-loss"]
    assert "#1-E1-metric-loss" in results and "#1-E1-metric-accuracy" in results
    assert (loss["@type"], loss["value"], loss["minValue"], loss["maxValue"]) == ("PropertyValue", 0.25, 0.25, 0.5)


def test_metrics_are_entities_generated_by_the_execution_in_prov(tmp_path: Path) -> None:
    doc = _metrics_doc()
    text = export_prov(doc)
    _check_prov(text, doc["hash"])
    data = json.loads(text)
    loss = data["entity"]["dml:metric/1-E1/loss"]

    def value(v: Any) -> Any:  # PROV-JSON types literals: {"$": "0.25", "type": "xsd:double"}
        return v["$"] if isinstance(v, dict) else v

    assert [float(value(loss[k])) for k in ("dml:last_value", "dml:count", "dml:last_step")] == [0.25, 2, 1]
    generated = {v["prov:entity"] for v in data["wasGeneratedBy"].values()}
    assert {"dml:metric/1-E1/loss", "dml:metric/1-E1/accuracy"} <= generated
