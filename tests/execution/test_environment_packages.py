"""The package list of the environment snapshot: read once per process, from the metadata headers."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import pytest

from deriva_ml.execution._environment import environment_snapshot, installed_packages

_METADATA = """Metadata-Version: 2.1
Name: Zz-Perf-Probe
Version: 1.2.3
Summary: a probe

Name: not-the-name
Version: 9.9.9 (the long description comes after the blank line)
"""


@pytest.fixture
def probe_dir(tmp_path: Path):
    dist = tmp_path / "zz_perf_probe-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(_METADATA)
    yield tmp_path
    if str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))
    installed_packages.cache_clear()


def _names(snapshot: dict) -> dict[str, str]:
    return {p["name"]: p["version"] for p in snapshot["packages"]}


def test_packages_are_computed_once_per_process(probe_dir: Path) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    first = environment_snapshot(at, env={}, argv=[])
    sys.path.insert(0, str(probe_dir))  # a distribution appearing mid-process is not looked for again
    assert "Zz-Perf-Probe" not in _names(environment_snapshot(at, env={}, argv=[]))
    assert _names(environment_snapshot(at, env={}, argv=[])) == _names(first)
    installed_packages.cache_clear()
    assert _names(environment_snapshot(at, env={}, argv=[]))["Zz-Perf-Probe"] == "1.2.3"  # header, not body


def test_header_reading_matches_the_full_metadata_parse() -> None:
    installed_packages.cache_clear()
    expected = sorted(
        {(d.metadata["Name"], d.version) for d in metadata.distributions() if d.metadata["Name"]},
        key=lambda p: (p[0].lower(), p),
    )
    assert list(installed_packages()) == expected
