from __future__ import annotations

import pytest

from deriva_ml import DerivaML
from deriva_ml.testing import add_domain_schema


@pytest.fixture
def ml(tmp_path, monkeypatch):
    monkeypatch.setenv("DERIVA_ML_HOME", str(tmp_path / "home"))
    ml = DerivaML("local", "test", home=tmp_path / "home")
    add_domain_schema(ml)
    yield ml
    ml.close()


@pytest.fixture
def workflow(ml):
    return ml.create_workflow(
        name="ResNet50 Training",
        workflow_type="Training",
        description="Fine-tune ResNet50 on medical images",
        url="https://github.com/org/repo/blob/abc123/train.py",
        checksum="e5f6a7b8c9d0e5f6a7b8c9d0e5f6a7b8c9d0e5f6",
    )
