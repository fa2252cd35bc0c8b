"""Execution tests run on both backends behind one interface.

``embedded``: the default SQLite catalog and local content-addressed store.
``ermrest+hatrac``: deriva_ml's ERMrest adapter and Hatrac store speaking real HTTP on 127.0.0.1 to the
ERMrest subset in ``tests/catalog/ermrest_fake.py`` and the Hatrac protocol server in
``tests/store/hatrac_server.py`` — the same code paths a live DERIVA server exercises.
``live``: a real ERMrest + Hatrac server named by ``DERIVA_ML_TEST_HOST`` (skipped without it), opened the
way a user opens it (``DerivaML(host, catalog_id)``) on a fresh catalog per test.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from deriva_ml import DerivaML
from deriva_ml.testing import add_domain_schema, new_embedded_catalog

_TESTS = Path(__file__).resolve().parents[1]
for sub in ("catalog", "store", "live"):
    if str(_TESTS / sub) not in sys.path:
        sys.path.insert(0, str(_TESTS / sub))

BACKENDS = ["embedded", "ermrest+hatrac", "live"]
REMOTE_BACKENDS = ["ermrest+hatrac", "live"]


@contextmanager
def open_backend(kind: str, home: Path, project: str = "test") -> Iterator[Callable[[], DerivaML]]:
    """A factory of DerivaML instances that all talk to one fresh catalog and object store of ``kind``."""
    opened: list[DerivaML] = []
    try:
        if kind == "embedded":
            new_embedded_catalog(home, project)  # a copy of the once-built deriva-ml catalog

            def open_embedded() -> DerivaML:
                ml = DerivaML("local", project, home=home)
                opened.append(ml)
                return ml

            yield open_embedded
        elif kind == "ermrest+hatrac":
            from ermrest_fake import FakeErmrest, new_ml_catalog
            from hatrac_server import HatracTestServer, make_store

            from deriva_ml.catalog.ermrest import ErmrestCatalog

            with FakeErmrest() as er, HatracTestServer() as hs:
                catalog_id = new_ml_catalog(er, project)  # what create_ml_catalog makes, copied

                def open_fake() -> DerivaML:
                    cat = ErmrestCatalog(er.host, catalog_id, scheme="http", credential={})
                    ml = DerivaML(er.host, catalog_id, catalog=cat, store=make_store(hs), home=home)
                    ml.servers = (er, hs)  # type: ignore[attr-defined]
                    opened.append(ml)
                    return ml

                yield open_fake
        elif kind == "live":
            from live_support import new_live_catalog

            host, catalog_id, cred = new_live_catalog(project)

            def open_live() -> DerivaML:
                ml = DerivaML(host, catalog_id, credential=cred, home=home)
                opened.append(ml)
                return ml

            yield open_live
        else:
            raise ValueError(f"unknown backend {kind!r}; known: {BACKENDS}")
    finally:
        for ml in opened:
            ml.close()


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path, monkeypatch) -> Iterator[Callable[[], DerivaML]]:
    """A factory of DerivaML instances that all talk to one fresh catalog and object store."""
    home = tmp_path / "home"
    monkeypatch.setenv("DERIVA_ML_HOME", str(home))
    with open_backend(request.param, home) as factory:
        yield factory


@pytest.fixture(params=REMOTE_BACKENDS)
def remote_backend(request, tmp_path) -> Iterator[Callable[[], DerivaML]]:
    """Like ``backend``, only the server legs (the ERMrest + Hatrac fakes, and the live server when set):
    for tests of what happens on a server (round trips, sync targets)."""
    with open_backend(request.param, tmp_path / "home") as factory:
        yield factory


@pytest.fixture
def ml(backend) -> DerivaML:
    ml = backend()
    add_domain_schema(ml)
    return ml


@pytest.fixture
def workflow(ml):
    return ml.create_workflow(
        name="ResNet50 Training",
        workflow_type="Training",
        description="Fine-tune ResNet50 on medical images",
        url="https://github.com/org/repo/blob/abc123/train.py",
        checksum="e5f6a7b8c9d0e5f6a7b8c9d0e5f6a7b8c9d0e5f6",
    )
