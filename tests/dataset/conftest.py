"""Datasets on real catalogs, with a small domain schema (Subject, Image), per backend:

``embedded`` (the SQLite catalog and local object store), ``ermrest-fake`` (the ERMrest adapter talking HTTP
to ``tests/catalog/ermrest_fake.py``, objects in a local store) and ``ermrest-live`` (only when
``DERIVA_ML_TEST_HOST`` names a server where catalogs may be created: a new catalog per test there and its
Hatrac; ``DERIVA_ML_TEST_CREDENTIAL_FILE`` optionally gives credentials, as in tests/catalog/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dataset_helpers import BACKENDS, CountingStore, open_backend

from deriva_ml import DerivaML
from deriva_ml.core.schema_defs import ColumnDef


@pytest.fixture(autouse=True)
def _bdbag_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # bdbag must never write ~/.bdbag during tests; our code uses <cache_dir>/bdbag.json when unset
    monkeypatch.delenv("BDBAG_CONFIG_FILE", raising=False)


@pytest.fixture(params=BACKENDS)
def ml(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    from contextlib import ExitStack

    with ExitStack() as stack:
        m, _ = open_backend(request.param, tmp_path, stack)
        m.create_table("Subject", [ColumnDef("Name", "text")])
        m.create_asset("Image")
        yield m
        m.close()


@pytest.fixture
def counting_ml(ml: DerivaML) -> Any:
    """A second DerivaML on the same catalog whose store counts ``get`` calls."""
    store = CountingStore(ml.store)  # type: ignore[arg-type]
    m = DerivaML(ml.host_name, ml.catalog_id, home=ml.home, catalog=ml.catalog, store=store)  # type: ignore[arg-type]
    m.counting_store = store  # type: ignore[attr-defined]
    return m
