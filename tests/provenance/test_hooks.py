"""The metrics hook and the lazy imports of the provenance package."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from deriva_ml import DerivaML
from deriva_ml.provenance import canonical, canonical_record, gather_execution
from provenance.prov_support import record_inputs, record_run, setup_domain


@pytest.fixture
def ml(tmp_path: Path) -> Any:
    m = DerivaML("local", "hooks", home=tmp_path / "home")
    setup_domain(m)
    yield m
    m.close()


def test_metrics_hook_feeds_the_content(ml: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rid = record_run(ml, "t", record_inputs(ml, "t"))
    calls: list[str] = []

    def metrics(ports: Any, schema: Any, execution: str) -> Mapping[str, Any]:
        calls.append(execution)
        return {"accuracy": 0.75, "loss": [0.5, 0.25]}

    plain = canonical_record(gather_execution(ml.ports, ml._schema, rid))
    passed = canonical_record(gather_execution(ml.ports, ml._schema, rid, metrics=metrics))
    assert passed["content"]["outputs"]["metrics"] == {"accuracy": 0.75, "loss": [0.5, 0.25]}
    assert plain["content"]["outputs"]["metrics"] == {} and passed["hash"] != plain["hash"]
    monkeypatch.setattr(canonical, "METRICS_SOURCE", metrics)  # how the lead wires branch metrics' source
    wired = canonical_record(gather_execution(ml.ports, ml._schema, rid))
    assert wired["hash"] == passed["hash"] and calls == [rid, rid]


def test_provenance_imports_no_export_library() -> None:
    code = (
        "import sys, deriva_ml, deriva_ml.provenance, deriva_ml.cli; "
        "bad = [m for m in ('rocrate', 'prov', 'rdflib', 'rocrate_validator') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
