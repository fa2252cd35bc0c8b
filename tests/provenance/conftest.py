"""Provenance tests run on every backend: embedded, the ERMrest + Hatrac fakes, and live when configured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from execution.conftest import open_backend

BACKENDS = ["embedded", "ermrest+hatrac", "live"]


@pytest.fixture(autouse=True)
def _bdbag_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BDBAG_CONFIG_FILE", raising=False)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    home = tmp_path / "home"
    monkeypatch.setenv("DERIVA_ML_HOME", str(home))
    with open_backend(request.param, home) as factory:
        yield factory
