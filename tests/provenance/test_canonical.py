"""The pure half: ``canonical_record`` and ``provenance_hash`` on hand-built facts (table-driven).

Each row changes one fact and says whether the content hash must change: catalog-specific values (RIDs,
URLs, snapshots, status, times, descriptions) must not move it; what the run was (code, inputs,
configuration, environment, outputs) must.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from deriva_ml.core.errors import DerivaMLException, ValidationError
from deriva_ml.provenance.canonical import (
    CANONICAL_VERSION,
    AssetFact,
    DatasetFact,
    ExecutionFacts,
    FeatureFact,
    canonical_json,
    canonical_record,
    provenance_hash,
)


def _asset(
    table: str, rid: str, filename: str, md5: str, role: str = "Output", types: tuple[str, ...] = ()
) -> AssetFact:
    return AssetFact(table, rid, filename, md5, 10, f"/hatrac/{table}/{md5}.{filename}", role, types)


def base_facts() -> ExecutionFacts:
    return ExecutionFacts(
        rid="1-E1",
        execution={
            "RID": "1-E1",
            "Description": "run",
            "Status": "Completed",
            "Status_Detail": "done",
            "RCT": "2026-01-01T00:00:00+00:00",
            "RMT": "2026-01-01T00:01:00+00:00",
            "Duration": "0:01:00",
        },
        workflow={
            "RID": "1-W1",
            "Name": "train",
            "URL": "https://g/x/blob/abc/t.py",
            "Checksum": "c1",
            "Version": "1.0",
        },
        datasets=(
            DatasetFact("1-D1", "Input", "0.2.0", "snap-1", "training set", ("Training",)),
            DatasetFact("1-D2", "Output", "0.1.0", "snap-2", "predictions", ("Labeled",)),
        ),
        assets=(
            _asset("Model", "1-A1", "weights.pt", "m0", role="Input"),
            _asset("Model", "1-A2", "model.pt", "m1", types=("Model",)),
            _asset("Image", "1-A3", "mask.png", "m2", types=("Image", "Segmentation_Mask")),
            _asset("Execution_Metadata", "1-M1", "configuration.json", "cfg", types=("Deriva_Config",)),
            _asset("Execution_Metadata", "1-M2", "uv.lock", "lock1", types=("Execution_Config",)),
            _asset(
                "Execution_Metadata", "1-M3", "environment_snapshot_20260101_000000.txt", "env", types=("Runtime_Env",)
            ),
            _asset("Execution_Metadata", "1-M4", "hydra-20260101_000000-config.yaml", "hc", types=("Hydra_Config",)),
            _asset("Execution_Metadata", "1-M5", "hydra-20260101_000000-hydra.yaml", "hh", types=("Hydra_Config",)),
        ),
        configuration={"argv": ["/home/me/t.py", "seed=1"], "config_choices": {"model": "small"}, "description": "x"},
        environment={
            "captured_at": "2026-01-01T00:00:00+00:00",
            "python": {"version": "3.11.7 (main, Jan 1 2026) [GCC 12]", "implementation": "CPython"},
            "os": {"system": "Linux", "machine": "x86_64", "release": "6.1", "node": "host-a"},
            "packages": [{"name": "numpy", "version": "2.0"}],
        },
        features=(FeatureFact("Quality", [{"Feature_Name": "Q", "Value": "good"}]),),
        metrics={"accuracy": 0.9},
        child_rids=((0, "1-C1"),),
    )


def _env(**kw: Any) -> Callable[[ExecutionFacts], ExecutionFacts]:
    def change(f: ExecutionFacts) -> ExecutionFacts:
        env = json.loads(json.dumps(dict(f.environment or {})))
        for path, value in kw.items():
            head, _, leaf = path.partition("__")
            if leaf:
                env[head][leaf] = value
            else:
                env[head] = value
        return attrs.evolve(f, environment=env)

    return change


def _asset_at(i: int, **kw: Any) -> Callable[[ExecutionFacts], ExecutionFacts]:
    def change(f: ExecutionFacts) -> ExecutionFacts:
        assets = list(f.assets)
        assets[i] = attrs.evolve(assets[i], **kw)
        return attrs.evolve(f, assets=tuple(assets))

    return change


def _dataset_at(i: int, **kw: Any) -> Callable[[ExecutionFacts], ExecutionFacts]:
    def change(f: ExecutionFacts) -> ExecutionFacts:
        ds = list(f.datasets)
        ds[i] = attrs.evolve(ds[i], **kw)
        return attrs.evolve(f, datasets=tuple(ds))

    return change


def _row(**kw: Any) -> Callable[[ExecutionFacts], ExecutionFacts]:
    return lambda f: attrs.evolve(f, execution={**f.execution, **kw})


def _workflow(**kw: Any) -> Callable[[ExecutionFacts], ExecutionFacts]:
    return lambda f: attrs.evolve(f, workflow={**(f.workflow or {}), **kw})


def _cfg(**kw: Any) -> Callable[[ExecutionFacts], ExecutionFacts]:
    return lambda f: attrs.evolve(f, configuration={**(f.configuration or {}), **kw})


# (name, change, hash changes?)
CASES: list[tuple[str, Callable[[ExecutionFacts], ExecutionFacts], bool]] = [
    # catalog-specific: not hashed
    ("execution RID", lambda f: attrs.evolve(f, rid="2-E1", execution={**f.execution, "RID": "2-E1"}), False),
    ("status", _row(Status="Failed", Status_Detail="boom"), False),
    ("times", _row(RCT="2027-01-01T00:00:00+00:00", RMT="2027-01-02T00:00:00+00:00", Duration="9:00:00"), False),
    ("execution description", _row(Description="another"), False),
    ("workflow RID and name", _workflow(RID="2-W1", Name="renamed"), False),
    ("asset RID and URL", _asset_at(1, rid="2-A2", url="/hatrac/Model/m1-1.model.pt"), False),
    ("dataset RID and snapshot", _dataset_at(0, rid="2-D1", snapshot="snap-9"), False),
    ("configuration.json bytes", _asset_at(3, md5="cfg-other"), False),
    ("environment snapshot file", _asset_at(5, md5="env2", filename="environment_snapshot_20270101_000000.txt"), False),
    ("environment capture time and host", _env(captured_at="2027", os__node="host-b", os__release="6.9"), False),
    ("hydra.yaml (run directories, times)", _asset_at(7, md5="hh2"), False),
    ("hydra file stamp", _asset_at(6, filename="hydra-20270101_000000-config.yaml"), False),
    ("argv[0] (the program's local path)", _cfg(argv=["/other/t.py", "seed=1"]), False),
    ("packages when a lock file is recorded", _env(packages=[{"name": "numpy", "version": "2.1"}]), False),
    ("child RIDs without recurse", lambda f: attrs.evolve(f, child_rids=((0, "9-C9"),)), False),
    ("python build string", _env(python__version="3.11.7 (other build) [Clang]"), False),
    # what the run was: hashed
    ("workflow checksum", _workflow(Checksum="c2"), True),
    ("workflow URL", _workflow(URL="https://g/x/blob/def/t.py"), True),
    ("workflow version", _workflow(Version="1.1"), True),
    ("input dataset version", _dataset_at(0, version="0.3.0"), True),
    ("input dataset description", _dataset_at(0, description="other set"), True),
    ("input dataset types", _dataset_at(0, types=("Testing",)), True),
    ("input asset MD5", _asset_at(0, md5="m0x"), True),
    ("output asset MD5", _asset_at(1, md5="m1x"), True),
    ("output filename", _asset_at(1, filename="model2.pt"), True),
    ("output length", _asset_at(1, length=11), True),
    ("output types", _asset_at(2, types=("Image",)), True),
    ("output becomes input", _asset_at(2, role="Input"), True),
    ("output dataset version", _dataset_at(1, version="0.2.0"), True),
    ("config choice", _cfg(config_choices={"model": "large"}), True),
    ("argument", _cfg(argv=["/home/me/t.py", "seed=2"]), True),
    ("hydra config.yaml", _asset_at(6, md5="hc2"), True),
    ("lock file", _asset_at(4, md5="lock2"), True),
    ("python version", _env(python__version="3.12.1 (main) [GCC 12]"), True),
    ("machine", _env(os__machine="arm64"), True),
    ("system", _env(os__system="Darwin"), True),
    (
        "feature value",
        lambda f: attrs.evolve(f, features=(FeatureFact("Quality", [{"Feature_Name": "Q", "Value": "bad"}]),)),
        True,
    ),
    ("metrics", lambda f: attrs.evolve(f, metrics={"accuracy": 0.8}), True),
]


@pytest.mark.parametrize(("name", "change", "moves"), CASES, ids=[c[0] for c in CASES])
def test_which_facts_move_the_hash(name: str, change: Callable[[ExecutionFacts], ExecutionFacts], moves: bool) -> None:
    before, after = canonical_record(base_facts()), canonical_record(change(base_facts()))
    assert (before["hash"] != after["hash"]) is moves, name
    if not moves:
        assert before["content"] == after["content"]


def test_metrics_log_is_represented_by_metrics_when_a_source_is_wired() -> None:
    log = AssetFact("Execution_Metadata", "1-L", "metrics.jsonl", "mm", 5, "/u", "Output", ("Metrics_File",))
    with_log = attrs.evolve(base_facts(), assets=(*base_facts().assets, log))
    names = [a["filename"] for a in canonical_record(with_log)["content"]["outputs"]["assets"]]
    assert "metrics.jsonl" not in names  # metrics={"accuracy": 0.9}: the values stand for the file
    unwired = attrs.evolve(with_log, metrics={})
    names = [a["filename"] for a in canonical_record(unwired)["content"]["outputs"]["assets"]]
    assert "metrics.jsonl" in names


def test_packages_stand_in_for_a_missing_lock_file() -> None:
    no_lock = attrs.evolve(base_facts(), assets=tuple(a for a in base_facts().assets if a.filename != "uv.lock"))
    doc = canonical_record(no_lock)
    assert doc["content"]["environment"]["lock_md5"] is None
    assert doc["content"]["environment"]["packages_sha256"]
    newer = _env(packages=[{"name": "numpy", "version": "2.1"}])(no_lock)
    assert canonical_record(newer)["hash"] != doc["hash"]


def test_order_of_rows_does_not_matter() -> None:
    f = base_facts()
    shuffled = attrs.evolve(f, assets=tuple(reversed(f.assets)), datasets=tuple(reversed(f.datasets)))
    assert canonical_record(shuffled) == canonical_record(f)


def test_content_and_record_are_apart() -> None:
    doc = canonical_record(base_facts())
    c, r = doc["content"], doc["record"]
    assert c["canonical"] == CANONICAL_VERSION
    assert set(c) == {"canonical", "workflow", "inputs", "configuration", "environment", "outputs"}
    assert c["inputs"]["datasets"] == [{"description": "training set", "types": ["Training"], "version": "0.2.0"}]
    assert c["outputs"]["datasets"] == [{"description": "predictions", "types": ["Labeled"], "version": "0.1.0"}]
    assert [a["filename"] for a in c["outputs"]["assets"]] == ["mask.png", "model.pt"]  # metadata files apart
    assert c["configuration"] == {
        "config_choices": {"model": "small"},
        "arguments": ["seed=1"],
        "hydra": [{"md5": "hc", "name": "config.yaml"}],
    }
    assert c["environment"] == {
        "lock_md5": "lock1",
        "python": "3.11.7",
        "implementation": "CPython",
        "system": "Linux",
        "machine": "x86_64",
    }
    assert r["status"] == "Completed" and r["duration"] == "0:01:00" and r["created"].startswith("2026")
    assert r["children"] == [{"rid": "1-C1", "sequence": 0}]
    assert {d["snapshot"] for d in r["datasets"]} == {"snap-1", "snap-2"}


def test_hash_is_sha256_of_canonical_content_json() -> None:
    doc = canonical_record(base_facts())
    text = json.dumps(doc["content"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert doc["hash"] == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert provenance_hash(doc) == provenance_hash(doc["content"]) == provenance_hash(base_facts()) == doc["hash"]
    # pinned: a change of the canonical form shows up here (and must bump CANONICAL_VERSION)
    assert doc["hash"] == PINNED


PINNED = "f89e227b696dd9a5bd7687a4a70eebdefab9b790096cc0240c5116277e5da55c"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"b": 1, "a": [1, 2]}, '{"a":[1,2],"b":1}'),
        ({"é": "ü"}, '{"é":"ü"}'),
        ([{"z": None, "y": True}], '[{"y":true,"z":null}]'),
    ],
)
def test_canonical_json(value: Any, text: str) -> None:
    assert canonical_json(value) == text


def test_canonical_json_refuses_nan() -> None:
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


@pytest.mark.parametrize("bad", [{}, {"content": {"workflow": {}}}, {"canonical": "other/1"}])
def test_provenance_hash_refuses_what_is_not_a_content_part(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="canonical") as info:
        provenance_hash(bad)
    assert isinstance(info.value, DerivaMLException)


def test_children_sorted_by_sequence_and_hashed_with_recurse() -> None:
    child_a = attrs.evolve(base_facts(), rid="1-C1", configuration={"argv": ["p", "seed=1"]})
    child_b = attrs.evolve(base_facts(), rid="1-C2", configuration={"argv": ["p", "seed=2"]})
    parent = attrs.evolve(base_facts(), children=((1, child_b), (0, child_a)), recursed=True)
    doc = canonical_record(parent)
    assert [c["sequence"] for c in doc["content"]["children"]] == [0, 1]
    assert [c["content"]["configuration"]["arguments"] for c in doc["content"]["children"]] == [["seed=1"], ["seed=2"]]
    assert [c["rid"] for c in doc["record"]["children"]] == ["1-C1", "1-C2"]  # the same order as content
    swapped = attrs.evolve(parent, children=((1, child_a), (0, child_b)))
    assert canonical_record(swapped)["hash"] != doc["hash"]
    renamed = attrs.evolve(parent, children=((1, attrs.evolve(child_b, rid="9-9")), (0, child_a)))
    assert canonical_record(renamed)["hash"] == doc["hash"]


@pytest.mark.parametrize(
    ("specs", "linked", "expected"),
    [
        ([("1-A", "0.2.0")], ["1-A"], {"1-A": "0.2.0"}),  # same catalog: by RID
        ([("1-A", "0.2.0")], ["2B"], {"2B": "0.2.0"}),  # synced copy: the one left over
        # synced copy of two: paired in creation order on both sides (1-0Z < 1-10; 2Y < 30)
        ([("1-10", "1.0.0"), ("1-0Z", "0.1.0")], ["30", "2Y"], {"2Y": "0.1.0", "30": "1.0.0"}),
        # one named, one not
        ([("1-A", "0.2.0"), ("1-0Z", "0.1.0")], ["1-A", "2Y"], {"1-A": "0.2.0", "2Y": "0.1.0"}),
        ([], ["1-A"], {}),  # no configuration.json: nothing known (the current version is used)
        ([("1-A", "0.2.0"), ("1-B", "0.1.0")], ["9"], {}),  # counts differ: no guess
    ],
)
def test_versions_used(specs: list[tuple[str, str]], linked: list[str], expected: dict[str, str]) -> None:
    from deriva_ml.provenance.canonical import versions_used

    assert versions_used(specs, linked) == expected
