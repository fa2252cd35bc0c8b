"""Fixtures for the catalog conformance suite: one fresh deriva-ml catalog per test, per adapter.

Adapters: ``sqlite`` (always), ``ermrest-fake`` (deriva_ml's ErmrestCatalog talking real HTTP to the
ERMrest subset in ``ermrest_fake.py`` on 127.0.0.1), ``ermrest-live`` (only when ``DERIVA_ML_TEST_HOST`` names
a server where catalogs may be created; ``DERIVA_ML_TEST_CREDENTIAL_FILE`` optionally gives credentials).
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from catalog_support import DOMAIN, domain_tables

from deriva_ml.catalog.port import Catalog
from deriva_ml.catalog.schema import ML_TABLES
from deriva_ml.catalog.sqlite import SQLiteCatalog, open_local_catalog
from deriva_ml.testing import new_embedded_catalog

ADAPTERS = ["sqlite"]
if importlib.util.find_spec("deriva_ml.catalog.ermrest") is not None:
    ADAPTERS.append("ermrest-fake")
if os.environ.get("DERIVA_ML_TEST_HOST"):
    ADAPTERS.append("ermrest-live")


def _credential() -> dict[str, str] | None:
    path = os.environ.get("DERIVA_ML_TEST_CREDENTIAL_FILE")
    if not path:
        return None
    data = json.loads(Path(path).read_text())
    host = os.environ["DERIVA_ML_TEST_HOST"]
    return data.get(host, data) if isinstance(data, dict) else None


@pytest.fixture(params=ADAPTERS)
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    """A fresh catalog with the deriva-ml schema, seeded terms and the test domain tables."""
    kind = request.param
    cat: Catalog
    if kind == "sqlite":
        new_embedded_catalog(tmp_path, "conformance")  # a copy of the once-built deriva-ml catalog
        cat = open_local_catalog("conformance", tmp_path)
        cat.create_tables(domain_tables())
    elif kind == "ermrest-fake":
        from ermrest_fake import FakeErmrest

        from deriva_ml.catalog.ermrest import create_ml_catalog

        server = request.getfixturevalue("ermrest_server")
        assert isinstance(server, FakeErmrest)
        cat = create_ml_catalog(server.host, DOMAIN, scheme="http", credential={})
        cat.create_tables(domain_tables())
    else:
        from deriva_ml.catalog.ermrest import create_ml_catalog

        cat = create_ml_catalog(os.environ["DERIVA_ML_TEST_HOST"], DOMAIN, credential=_credential())
        cat.create_tables(domain_tables())
    try:
        yield cat
    finally:
        cat.close()


@pytest.fixture
def ermrest_server() -> Iterator[object]:
    from ermrest_fake import FakeErmrest

    with FakeErmrest() as server:
        yield server


@pytest.fixture
def sqlite_catalog(tmp_path: Path) -> Iterator[SQLiteCatalog]:
    new_embedded_catalog(tmp_path, "unit")
    cat = open_local_catalog("unit", tmp_path)
    cat.create_tables(domain_tables())
    try:
        yield cat
    finally:
        cat.close()


__all__ = ["DOMAIN", "ML_TABLES", "domain_tables"]
