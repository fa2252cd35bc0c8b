"""Unit tests of the core records, the transition table and the configuration.json codec."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deriva_ml.core import errors
from deriva_ml.core.codec import configuration_from_json, configuration_to_json
from deriva_ml.core.records import (
    AssetSpec,
    DatasetSpec,
    DatasetVersion,
    ExecutionConfiguration,
    ExecutionRecord,
    Workflow,
    format_duration,
    transition,
)
from deriva_ml.core.rid import is_rid, parse_rid, split_snapshot
from deriva_ml.core.status import Status, render_markdown

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("rid", ["1-ABC1", "2-GHI", "1-X00R-5T8W", "1-ABC1@2TA-XYZ0", "T9G"])
def test_valid_rids(rid):
    assert parse_rid(rid) == rid


@pytest.mark.parametrize("rid", ["", "1-abc", "1--A", "-1A", "1-A@", "1 A", "1-A/B", None, 12, "1-A@@B"])
def test_invalid_rids_name_the_value(rid):
    assert not is_rid(rid)
    with pytest.raises(errors.InvalidRID) as err:
        parse_rid(rid, "DatasetSpec.rid")
    assert repr(rid) in str(err.value) and "DatasetSpec.rid" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_split_snapshot():
    assert split_snapshot(parse_rid("1-ABC@2TA")) == ("1-ABC", "2TA")
    assert split_snapshot(parse_rid("1-ABC")) == ("1-ABC", None)


def test_records_validate_fields_with_named_errors():
    with pytest.raises(errors.InvalidRID, match="DatasetSpec.rid"):
        DatasetSpec(rid="not a rid")
    with pytest.raises(errors.InvalidVersion, match="'1.2'"):
        DatasetSpec(rid="1-ABC", version="1.2")
    with pytest.raises(errors.ValidationError, match="workflow_type"):
        Workflow(name="x", workflow_type=[])
    with pytest.raises(errors.ValidationError, match="AssetSpec.cache"):
        AssetSpec(rid="1-ABC", cache="maybe")
    with pytest.raises(errors.ValidationError, match="must be timezone-aware"):
        ExecutionRecord(rid="1-A", start_time=datetime(2020, 1, 1))


def test_workflow_type_accepts_a_string_or_a_list():
    assert Workflow(name="w", workflow_type="Training").workflow_type == ("Training",)
    assert Workflow(name="w", workflow_type=["A", "B"]).workflow_type == ("A", "B")


def test_bare_rids_are_accepted_where_the_spec_accepts_them():
    cfg = ExecutionConfiguration(assets=["2-GHI", AssetSpec(rid="2-JKL", cache=True)], datasets=["1-ABC"])
    assert cfg.assets == (AssetSpec("2-GHI"), AssetSpec("2-JKL", True))
    assert cfg.datasets == (DatasetSpec("1-ABC"),)


def test_transition_error_names_from_to_and_allowed():
    rec = ExecutionRecord(rid="1-A", status="Completed")
    with pytest.raises(errors.InvalidTransition) as err:
        transition(rec, Status.running, "again", datetime.now(UTC))
    msg = str(err.value)
    assert "'Completed'" in msg and "'Running'" in msg and "terminal" in msg
    rec = ExecutionRecord(rid="1-A", status="Created")
    with pytest.raises(errors.InvalidTransition, match="allowed from 'Created': 'Aborted', 'Failed', 'Initializing'"):
        transition(rec, Status.running, "", datetime.now(UTC))


def test_status_parse_accepts_names_and_values():
    assert Status.parse("running") is Status.running
    assert Status.parse("Running") is Status.Running is Status.running
    with pytest.raises(errors.ValidationError, match="'Bogus'"):
        Status.parse("Bogus")


def test_duration_text():
    assert format_duration(3725.5) == "1:02:05.500000"
    assert format_duration(0) == "0:00:00.000000"


def test_status_doc_is_generated_from_the_table():
    assert (ROOT / "docs" / "status.md").read_text() == render_markdown()


REFERENCE_CONFIG = {
    "datasets": [
        {"rid": "1-ABC", "version": {"major": 1, "minor": 2, "patch": 0}, "materialize": False, "description": ""},
        {"rid": "1-DEF", "version": "0.4.1"},
        {"rid": "1-GHI"},
    ],
    "assets": ["2-GHI", {"rid": "2-JKL", "cache": True}],
    "workflow": {
        "name": "ResNet50 Training",
        "workflow_type": ["Training"],
        "url": "https://github.com/org/repo/blob/abc/train.py",
        "checksum": "e5f6",
        "git_root": "/home/me/repo",
        "allow_dirty": False,
        "is_notebook": False,
        "rid": None,
        "version": "0.3.1",
        "description": None,
    },
    "description": "Training run",
    "argv": ["train.py", "--lr", "0.1"],
    "config_choices": {"model_config": "cifar10_quick"},
}


def test_reads_reference_configuration_json():
    cfg = configuration_from_json(json.dumps(REFERENCE_CONFIG))
    assert cfg.datasets[0].version == DatasetVersion(1, 2, 0) and cfg.datasets[0].materialize is False
    assert cfg.datasets[1].version == DatasetVersion(0, 4, 1)
    assert cfg.datasets[2].version is None
    assert cfg.assets == (AssetSpec("2-GHI", False), AssetSpec("2-JKL", True))
    assert isinstance(cfg.workflow, Workflow) and cfg.workflow.checksum == "e5f6"
    assert cfg.config_choices == {"model_config": "cifar10_quick"}
    out = json.loads(configuration_to_json(cfg))
    assert list(out) == ["datasets", "assets", "workflow", "description", "argv", "config_choices"]
    assert out["datasets"][1]["version"] == {"major": 0, "minor": 4, "patch": 1}
    assert out["assets"][0] == {"rid": "2-GHI", "cache": False}


def test_unknown_keys_warn_and_malformed_values_raise():
    with pytest.warns(UserWarning, match="extra_key"):
        configuration_from_json(json.dumps({"extra_key": 1}))
    with pytest.raises(errors.ConfigurationError, match="datasets"):
        configuration_from_json(json.dumps({"datasets": [{"rid": "1-A", "version": "one"}]}))
    with pytest.raises(errors.ConfigurationError, match="assets"):
        configuration_from_json(json.dumps({"assets": "2-GHI"}))
    with pytest.raises(errors.ConfigurationError, match="not valid JSON"):
        configuration_from_json("{")


# The core's purity (no deriva, dulwich, diskcache, sqlite3, requests, hydra_zen, bdbag) is an import-linter
# contract in pyproject.toml, checked by `lint-imports` in .ci/run (tests/test_layers.py checks its coverage).


def test_spec_import_paths():
    code = (
        "from deriva_ml.core.definitions import Status\n"
        "from deriva_ml.dataset.aux_classes import DatasetSpec\n"
        "from deriva_ml.asset.aux_classes import AssetSpec, AssetSpecConfig\n"
        "from deriva_ml.execution import ExecutionConfiguration, Workflow\n"
        "from deriva_ml import DerivaML\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("field", "given", "expected"),
    [
        ("datasets", None, ()),
        ("datasets", "1-ABC", (DatasetSpec(rid="1-ABC"),)),
        ("datasets", DatasetSpec(rid="1-ABC"), (DatasetSpec(rid="1-ABC"),)),
        ("datasets", {"rid": "1-ABC", "materialize": False}, (DatasetSpec(rid="1-ABC", materialize=False),)),
        ("datasets", ("1-ABC", {"rid": "1-DEF"}), (DatasetSpec(rid="1-ABC"), DatasetSpec(rid="1-DEF"))),
        ("assets", None, ()),
        ("assets", "2-GHI", (AssetSpec(rid="2-GHI"),)),
        ("assets", AssetSpec(rid="2-GHI", cache=True), (AssetSpec(rid="2-GHI", cache=True),)),
        ("assets", {"rid": "2-GHI", "cache": True}, (AssetSpec(rid="2-GHI", cache=True),)),
        ("assets", ["2-GHI", AssetSpec(rid="2-JKL")], (AssetSpec(rid="2-GHI"), AssetSpec(rid="2-JKL"))),
    ],
)
def test_configuration_spec_lists_accept_one_entry_or_many(field, given, expected):
    assert getattr(ExecutionConfiguration(**{field: given}), field) == expected


@pytest.mark.parametrize(
    ("field", "what"), [("datasets", "list of DatasetSpec"), ("assets", "list of AssetSpec or RID strings")]
)
def test_configuration_spec_list_refuses_a_non_list_naming_the_field(field, what):
    with pytest.raises(errors.ValidationError, match=rf"^{field}=42 must be a {what}$"):
        ExecutionConfiguration(**{field: 42})
