"""Helpers for dataset tests: the backends (embedded, ERMrest fake, live lab), domain rows, a counting store."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from deriva_ml import DerivaML
from deriva_ml.core.effects import Batch, Insert
from deriva_ml.store.local import LocalObjectStore
from deriva_ml.testing import new_embedded_catalog

_CATALOG_TESTS = Path(__file__).resolve().parents[1] / "catalog"
if str(_CATALOG_TESTS) not in sys.path:
    sys.path.insert(0, str(_CATALOG_TESTS))

BACKENDS = ["embedded", "ermrest-fake"]
if os.environ.get("DERIVA_ML_TEST_HOST"):
    BACKENDS.append("ermrest-live")


def open_backend(kind: str, tmp_path: Path, stack: Any) -> tuple[DerivaML, Any]:
    """``(ml, fake_server_or_None)`` on a new catalog whose domain schema is ``t``; ``stack`` (an ExitStack)
    keeps the fake server running."""
    from catalog_support import live_credential

    from deriva_ml.catalog.ermrest import create_ml_catalog

    if kind == "embedded":
        new_embedded_catalog(tmp_path, "t")  # a copy of the once-built deriva-ml catalog
        return DerivaML("local", "t", home=tmp_path), None
    if kind == "ermrest-fake":
        from ermrest_fake import FakeErmrest, new_ml_catalog

        from deriva_ml.catalog.ermrest import ErmrestCatalog

        er = stack.enter_context(FakeErmrest())
        # what create_ml_catalog makes, copied
        cat = ErmrestCatalog(er.host, new_ml_catalog(er, "t"), scheme="http", credential={})
        store = LocalObjectStore(tmp_path / "objects")
        return DerivaML(er.host, cat.catalog_id, catalog=cat, store=store, home=tmp_path, domain_schema="t"), er
    host = os.environ["DERIVA_ML_TEST_HOST"]
    cred = live_credential()
    cat = create_ml_catalog(host, "t", credential=cred)
    catalog_id = cat.catalog_id
    cat.close()
    return DerivaML(host, catalog_id, credential=cred, home=tmp_path, domain_schema="t"), None


class CountingStore:
    """The real LocalObjectStore, counting ``get`` calls (not a mock: every call goes through). It does not
    offer ``path_of``, so a bag reads every object through ``get`` as it does from Hatrac."""

    def __init__(self, inner: LocalObjectStore) -> None:
        self.inner = inner
        self.gets: list[str] = []

    def get(self, url: str, dest: Path, **kwargs: Any) -> Path:
        self.gets.append(url)
        return self.inner.get(url, dest, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name == "path_of":  # no local paths (like Hatrac): every object read is a counted ``get``
            raise AttributeError(name)
        return getattr(self.inner, name)


def add_subjects(ml: DerivaML, n: int) -> list[str]:
    # a row needs one non-system value on ERMrest ("Entity insertion requires at least one non-defaulting column")
    result = ml.catalog.apply(Batch([Insert("t", "Subject", [{"Name": f"s{i}"} for i in range(n)])]))
    return [r["RID"] for r in result.inserted[0]]


def add_images(ml: DerivaML, tmp_path: Path, n: int, *, size: int = 1000, prefix: str = "img") -> list[str]:
    """Store ``n`` files in the object store and insert their Image rows; returns the RIDs."""
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    rows = []
    for i in range(n):
        f = src / f"{prefix}{i}.png"
        f.write_bytes(os.urandom(size + i))
        obj = ml.store.put(f, table="Image", filename=f.name)
        rows.append({"URL": obj.url, "Filename": obj.filename, "Length": obj.length, "MD5": obj.md5})
    result = ml.catalog.apply(Batch([Insert("t", "Image", rows)]))
    return [r["RID"] for r in result.inserted[0]]
