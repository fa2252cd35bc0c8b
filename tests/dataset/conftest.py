"""Datasets on real catalogs, with a small domain schema (Subject, Image), per backend:

``embedded`` (the SQLite catalog and local object store), ``ermrest-fake`` (the ERMrest adapter talking HTTP
to ``tests/catalog/ermrest_fake.py``, objects in a local store) and ``ermrest-live`` (only when
``DERIVA_ML_TEST_HOST`` names a server where catalogs may be created: a new catalog per test there and its
Hatrac; ``DERIVA_ML_TEST_CREDENTIAL_FILE`` optionally gives credentials, as in tests/catalog/conftest.py).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dataset_helpers import CountingStore

from deriva_ml import DerivaML
from deriva_ml.core.schema_defs import ColumnDef

_CATALOG_TESTS = Path(__file__).resolve().parents[1] / "catalog"
if str(_CATALOG_TESTS) not in sys.path:
    sys.path.insert(0, str(_CATALOG_TESTS))

BACKENDS = ["embedded", "ermrest-fake"]
if os.environ.get("DERIVA_ML_TEST_HOST"):
    BACKENDS.append("ermrest-live")


def live_credential() -> dict[str, str] | None:
    path = os.environ.get("DERIVA_ML_TEST_CREDENTIAL_FILE")
    if not path:
        return None
    data = json.loads(Path(path).read_text())
    host = os.environ["DERIVA_ML_TEST_HOST"]
    return data.get(host, data) if isinstance(data, dict) else None


def open_backend(kind: str, tmp_path: Path, stack: Any) -> tuple[DerivaML, Any]:
    """``(ml, fake_server_or_None)`` on a new catalog whose domain schema is ``t``; ``stack`` (an ExitStack)
    keeps the fake server running."""
    from deriva_ml.catalog.ermrest import create_ml_catalog

    if kind == "embedded":
        return DerivaML("local", "t", home=tmp_path), None
    if kind == "ermrest-fake":
        from ermrest_fake import FakeErmrest

        from deriva_ml.store.local import LocalObjectStore

        er = stack.enter_context(FakeErmrest())
        cat = create_ml_catalog(er.host, "t", scheme="http", credential={})
        store = LocalObjectStore(tmp_path / "objects")
        return DerivaML(er.host, cat.catalog_id, catalog=cat, store=store, home=tmp_path, domain_schema="t"), er
    host = os.environ["DERIVA_ML_TEST_HOST"]
    cred = live_credential()
    cat = create_ml_catalog(host, "t", credential=cred)
    catalog_id = cat.catalog_id
    cat.close()
    return DerivaML(host, catalog_id, credential=cred, home=tmp_path, domain_schema="t"), None


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
