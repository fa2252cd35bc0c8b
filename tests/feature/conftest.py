"""Feature tests on both backends (embedded; ERMrest + Hatrac fakes; live when DERIVA_ML_TEST_HOST is set),
opened by the execution suite's ``open_backend``, with the small domain schema plus a ``Diagnosis`` vocabulary."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from execution.conftest import BACKENDS, REMOTE_BACKENDS, open_backend  # noqa: E402
from feature_helpers import add_feature_schema  # noqa: E402

from deriva_ml import DerivaML  # noqa: E402
from deriva_ml.testing import make_workflow  # noqa: E402


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path, monkeypatch) -> Iterator[Callable[[], DerivaML]]:
    home = tmp_path / "home"
    monkeypatch.setenv("DERIVA_ML_HOME", str(home))
    monkeypatch.delenv("BDBAG_CONFIG_FILE", raising=False)
    with open_backend(request.param, home) as factory:
        yield factory


@pytest.fixture(params=REMOTE_BACKENDS)
def remote_backend(request, tmp_path) -> Iterator[Callable[[], DerivaML]]:
    with open_backend(request.param, tmp_path / "home") as factory:
        yield factory


@pytest.fixture
def ml(backend) -> DerivaML:
    m = backend()
    add_feature_schema(m)
    return m


@pytest.fixture
def workflow():
    return make_workflow("feature test", "Annotation")
