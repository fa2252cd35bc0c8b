"""A replay that reproduced its original has the original's content: the replay's link file (a Deriva_Config
metadata file like configuration.json) is not read as the run's configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from deriva_ml import DerivaML, ExecutionConfiguration
from deriva_ml.provenance import canonical_record, gather_execution
from deriva_ml.replay.link import ENV_REPLAY_OF
from provenance.prov_support import make_workflow


def _run(ml: DerivaML) -> str:
    cfg = ExecutionConfiguration(
        workflow=make_workflow("train"), argv=("train.py", "--seed", "3"), config_choices={"model": "small"}
    )
    with ml.create_execution(cfg) as exe:
        exe.asset_file_path("Execution_Asset", "model.txt").write_text("weights 3\n")
    exe.upload_execution_outputs()
    return str(exe.execution_rid)


def test_a_reproduced_replay_has_the_original_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ml = DerivaML("local", "t", home=tmp_path)
    original = _run(ml)
    monkeypatch.setenv(ENV_REPLAY_OF, original)
    replay = _run(ml)
    a = canonical_record(gather_execution(ml.ports, ml._schema, original))
    b = canonical_record(gather_execution(ml.ports, ml._schema, replay))
    files = ml.catalog.query("deriva-ml", "Execution_Metadata", {}, columns=["Filename"])
    assert f"replay-of-{original}.json" in {f["Filename"] for f in files}  # the link is there
    assert b["content"]["configuration"]["arguments"] == ["--seed", "3"]
    assert a["content"] == b["content"] and a["hash"] == b["hash"]
    ml.close()
