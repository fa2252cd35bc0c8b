"""Real embedded catalogs in temporary directories, with a small domain schema (Subject, Image)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dataset_helpers import CountingStore

from deriva_ml import DerivaML


@pytest.fixture(autouse=True)
def _bdbag_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # bdbag must never write ~/.bdbag during tests; our code uses <cache_dir>/bdbag.json when unset
    monkeypatch.delenv("BDBAG_CONFIG_FILE", raising=False)


@pytest.fixture
def ml(tmp_path: Path) -> Any:
    m = DerivaML("local", "t", home=tmp_path)
    m.create_table("Subject")
    m.create_asset("Image")
    yield m
    m.close()


@pytest.fixture
def counting_ml(ml: DerivaML) -> Any:
    """A second DerivaML on the same catalog whose store counts ``get`` calls."""
    store = CountingStore(ml.store)  # type: ignore[arg-type]
    m = DerivaML("local", "t", home=ml.home, catalog=ml.catalog, store=store)  # type: ignore[arg-type]
    m.counting_store = store  # type: ignore[attr-defined]
    return m
