"""Data API tests on every backend: ``embedded`` (SQLite + local store), ``ermrest-fake`` (the ERMrest adapter
over HTTP to tests/catalog/ermrest_fake.py) and ``ermrest-live`` (the lab server when DERIVA_ML_TEST_HOST is set;
a fresh catalog per test). Domain schema ``t`` with Subject(Name, Age) and Sample(Tag, Subject -> Subject)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

_TESTS = Path(__file__).resolve().parents[1]
for sub in ("data", "dataset", "catalog", "store", "live"):
    if str(_TESTS / sub) not in sys.path:
        sys.path.insert(0, str(_TESTS / sub))

from dataset_helpers import BACKENDS, open_backend  # noqa: E402

from deriva_ml.core.schema_defs import ColumnDef  # noqa: E402


@pytest.fixture(autouse=True)
def _bdbag_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BDBAG_CONFIG_FILE", raising=False)


@pytest.fixture(params=BACKENDS)
def ml(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    with ExitStack() as stack:
        m, _ = open_backend(request.param, tmp_path, stack)
        m.create_table("Subject", [ColumnDef("Name", "text"), ColumnDef("Age", "int4")])
        m.create_table("Sample", [ColumnDef("Tag", "text")], references=["Subject"])
        m.backend = request.param  # type: ignore[attr-defined]
        yield m
        m.close()
