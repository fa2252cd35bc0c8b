"""The catalog side of replay on every backend: what ``gather_facts`` reads (and how many requests it
costs), and what an execution created under ``deriva-ml replay``'s environment records."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from live_support import http_log, unique_token

from deriva_ml import DerivaML
from deriva_ml.dataset.aux_classes import DatasetSpec
from deriva_ml.execution import ExecutionConfiguration
from deriva_ml.replay.link import ENV_REPLAY_DATASETS, ENV_REPLAY_OF, ENV_REPLAY_RECORD, link_filename
from deriva_ml.replay.run import gather_facts
from deriva_ml.testing import add_domain_schema


def _images_dataset(ml: DerivaML, token: str) -> tuple[str, str, str]:
    """A dataset of two images made by a recorded execution; returns (execution, dataset, first version)."""
    wf = ml.create_workflow(name="setup", workflow_type="Training", url=f"https://x/{token}/s.py", checksum="s")
    with ml.create_execution(ExecutionConfiguration(workflow=wf, description="make images")) as exe:
        for i in range(2):
            exe.asset_file_path("Image", f"img{i}.png").write_bytes(f"{token} image {i}".encode())
    images = [a.rid for a in exe.upload_execution_outputs()[f"{ml.domain_schema}/Image"]]
    ds = ml.create_dataset(["Training"], "two images")
    ds.add_dataset_members(images)
    return str(exe.execution_rid), str(ds.dataset_rid), str(ml.dataset_version(ds.dataset_rid))


def _run(ml: DerivaML, token: str, n_outputs: int, datasets: list[DatasetSpec], argv: tuple[str, ...]) -> Any:
    wf = ml.create_workflow(
        name="train", workflow_type="Training", url=f"https://github.com/o/r/blob/{'a' * 40}/t.py", checksum=token
    )
    cfg = ExecutionConfiguration(workflow=wf, description="run", datasets=datasets, argv=argv)
    with ml.create_execution(cfg) as exe:
        for i in range(n_outputs):
            exe.asset_file_path("Model", f"w{i}.bin").write_bytes(f"{token} {i}".encode())
    exe.upload_execution_outputs()
    return exe


def test_gather_facts_reads_what_the_run_recorded(ml: DerivaML, tmp_path: Path) -> None:
    token = unique_token()
    _setup, ds, version = _images_dataset(ml, token)
    exe = _run(ml, token, 2, [DatasetSpec(rid=ds)], ("train.py", "--seed", "3"))
    facts = gather_facts(ml.catalog, ml.store, exe.execution_rid, tmp_path)
    assert facts.rid == exe.execution_rid and facts.status == "Completed"
    assert facts.argv == ("train.py", "--seed", "3")
    assert facts.workflow_url == f"https://github.com/o/r/blob/{'a' * 40}/t.py" and facts.workflow_checksum == token
    assert [(d.rid, d.version) for d in facts.datasets] == [(ds, version)]
    models = sorted((a.filename, a.md5) for a in facts.outputs if a.table == "Model")
    assert [m[0] for m in models] == ["w0.bin", "w1.bin"] and all(m[1] for m in models)
    assert any(a.filename == "configuration.json" for a in facts.outputs)
    assert not facts.has_children and not facts.inputs


def test_gather_facts_costs_the_same_requests_for_2_or_12_outputs(
    remote_backend: Callable[[], DerivaML], tmp_path: Path
) -> None:
    ml = remote_backend()
    add_domain_schema(ml)
    token = unique_token()
    small = _run(ml, token + "a", 2, [], ("t.py",))
    large = _run(ml, token + "b", 12, [], ("t.py",))
    counts = []
    for exe in (small, large):
        with http_log() as log:
            facts = gather_facts(ml.catalog, ml.store, exe.execution_rid, tmp_path)
        counts.append((log.count(service="ermrest"), log.count(service="hatrac")))
        assert len([a for a in facts.outputs if a.table == "Model"]) in (2, 12)
    print("gather_facts (ermrest, hatrac) requests for 2 and 12 outputs:", counts)
    assert counts[0] == counts[1], counts
    assert counts[0][1] == 1  # configuration.json, the only object read


def test_an_execution_created_under_replay_is_linked_and_its_datasets_pinned(
    ml: DerivaML, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = unique_token()
    original, ds, first = _images_dataset(ml, token)
    ml.increment_dataset_version(ds, "minor", description="newer")
    assert str(ml.dataset_version(ds)) != first
    record = tmp_path / "created.txt"
    monkeypatch.setenv(ENV_REPLAY_OF, original)
    monkeypatch.setenv(ENV_REPLAY_DATASETS, json.dumps({ds: first}))
    monkeypatch.setenv(ENV_REPLAY_RECORD, str(record))
    exe = _run(ml, token, 1, [DatasetSpec(rid=ds)], ("t.py",))
    assert [str(d.version) for d in exe.configuration.datasets] == [first]  # the recorded version, not the newest
    assert record.read_text().split() == [str(exe.execution_rid)]
    facts = gather_facts(ml.catalog, ml.store, exe.execution_rid, tmp_path)
    assert [(d.rid, d.version) for d in facts.datasets] == [(ds, first)]
    links = [a for a in facts.outputs if a.filename == link_filename(original)]
    assert len(links) == 1 and links[0].table == "Execution_Metadata"
    dest = tmp_path / "link.json"
    url = ml.catalog.query("deriva-ml", "Execution_Metadata", {"RID": links[0].rid})[0]["URL"]
    ml.store.get(url, dest, md5=links[0].md5)
    assert json.loads(dest.read_text()) == {"replay_of": original, "execution": str(exe.execution_rid)}


def test_without_the_replay_environment_nothing_is_added(
    ml: DerivaML, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_REPLAY_OF, raising=False)
    token = unique_token()
    exe = _run(ml, token, 1, [], ("t.py",))
    facts = gather_facts(ml.catalog, ml.store, exe.execution_rid, tmp_path)
    assert not [a for a in facts.outputs if a.filename.startswith("replay-of-")]


def test_cli_errors_have_their_exit_codes(ml: DerivaML, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if ml.host_name != "local":
        pytest.skip("the CLI test opens the embedded catalog by name")
    from deriva_ml.cli import main

    exe = _run(ml, unique_token(), 1, [], ("t.py",))
    base = ["--catalog", ml.catalog_id, "--home", str(ml.home)]
    # the recorded commit (aaaa...) is in no local repository: refused, naming it (exit 1)
    assert main(["replay", str(exe.execution_rid), *base, "--dry-run", "--repo", str(tmp_path)]) == 1
    assert f"cannot find commit {'a' * 40} offline" in capsys.readouterr().err
    assert main(["replay", "1-ZZZZ", *base]) == 3  # no such RID
    assert main(["replay", str(exe.execution_rid), *base, "--override", "seed"]) == 2  # not KEY=VALUE
    assert "KEY=VALUE" in capsys.readouterr().err
