"""Helpers for dataset tests: domain rows on a real embedded catalog, a counting object store."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from deriva_ml import DerivaML
from deriva_ml.core.effects import Batch, Insert
from deriva_ml.store.local import LocalObjectStore


class CountingStore:
    """The real LocalObjectStore, counting ``get`` calls (not a mock: every call goes through)."""

    def __init__(self, inner: LocalObjectStore) -> None:
        self.inner = inner
        self.gets: list[str] = []

    def get(self, url: str, dest: Path, **kwargs: Any) -> Path:
        self.gets.append(url)
        return self.inner.get(url, dest, **kwargs)

    def __getattr__(self, name: str) -> Any:
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
