"""Concurrent writers on real ERMrest meet 503 "Transaction aborted." (PostgreSQL rolled the transaction
back: a serialization failure or deadlock). The 16-job sweep against the live server lost 11 jobs to it
(``tests/runner/test_many_workers.py``). The ERMrest adapter sends such a request again, POST included
(nothing was committed); any other 503 of a POST is not repeated (it may have been applied)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deriva_ml.catalog.port import ML_SCHEMA
from deriva_ml.core.effects import Batch, Insert
from deriva_ml.core.errors import CatalogBusy

_TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake() -> Iterator[Any]:
    if str(_TESTS / "catalog") not in sys.path:
        sys.path.insert(0, str(_TESTS / "catalog"))
    from ermrest_fake import FakeErmrest

    with FakeErmrest() as er:
        yield er


def _insert(cat: Any, name: str) -> Any:
    return cat.apply(Batch([Insert(ML_SCHEMA, "Workflow", [{"Name": name, "URL": f"https://x/{name}.py"}])]))


def test_a_rolled_back_insert_is_sent_again_and_lands_once(fake: Any) -> None:
    from deriva_ml.catalog.ermrest import create_ml_catalog

    cat = create_ml_catalog(fake.host, "busy", scheme="http", credential={})
    # what real ERMrest answers when PostgreSQL aborts the transaction (apicore.error_handler, pgcode 40xxx)
    fake.fail_next = [(503, "Service Unavailable\nTransaction aborted."), (503, "Resources unavailable.")]
    before = len(fake.log)
    _insert(cat, "retried")
    posts = [p for m, p, _ in fake.log[before:] if m == "POST" and "Workflow" in p]
    assert len(posts) == 3  # two rolled back, the third applied
    assert [r["Name"] for r in cat.query(ML_SCHEMA, "Workflow", {"Name": "retried"})] == ["retried"]


def test_another_503_of_an_insert_is_not_repeated(fake: Any) -> None:
    from deriva_ml.catalog.ermrest import create_ml_catalog

    cat = create_ml_catalog(fake.host, "busy", scheme="http", credential={})
    fake.fail_next = [(503, "Service Unavailable: the gateway gave up")]
    before = len(fake.log)
    with pytest.raises(CatalogBusy):
        _insert(cat, "once")
    assert sum(1 for m, p, _ in fake.log[before:] if m == "POST") == 1
    assert cat.query(ML_SCHEMA, "Workflow", {"Name": "once"}) == []
