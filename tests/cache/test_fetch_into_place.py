"""``fetch_into_place``: the one download-verify-move of both the asset cache and ``download_uncached``.

Against the real local object store: the bytes reach ``dest`` only after they matched, whatever fails
leaves nothing behind (no temporary directory, an earlier file at ``dest`` untouched), and a cache entry
directory is emptied and the file made read-only.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from deriva_ml.cache._files import fetch_into_place
from deriva_ml.core.errors import ChecksumMismatch
from deriva_ml.store.local import LocalObjectStore
from deriva_ml.store.port import StoredObject

DATA = b"weights " * 1000


@pytest.fixture
def stored(tmp_path: Path) -> tuple[LocalObjectStore, StoredObject]:
    store = LocalObjectStore(tmp_path / "objects")
    src = tmp_path / "w.bin"
    src.write_bytes(DATA)
    return store, store.put(src, table="Model", filename="w.bin")


def fetch(
    store: LocalObjectStore, obj: StoredObject, dest: Path, *, md5: str = "", length: int = -1, trust: bool = True
) -> os.stat_result:
    return fetch_into_place(
        store,
        obj.url,
        md5 or obj.md5,
        dest,
        tmp_parent=dest.parent,
        prefix=".t-",
        length=obj.length if length < 0 else length,
        progress=None,
        trust_store_md5=trust,
    )


@pytest.mark.parametrize("trust", [True, False])
def test_verified_bytes_land_at_dest_and_no_temporary_directory_stays(stored, tmp_path: Path, trust: bool) -> None:
    store, obj = stored
    dest = tmp_path / "work" / "w.bin"
    st = fetch(store, obj, dest, trust=trust)
    assert dest.read_bytes() == DATA and st.st_size == len(DATA)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["w.bin"]


@pytest.mark.parametrize(
    ("change", "trust"),
    [({"md5": "0" * 32}, True), ({"md5": "0" * 32}, False), ({"length": len(DATA) + 1}, True)],
)
def test_a_bad_download_leaves_dest_as_it_was(stored, tmp_path: Path, change: dict, trust: bool) -> None:
    store, obj = stored
    dest = tmp_path / "work" / "w.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"the user's own file")
    with pytest.raises(ChecksumMismatch):
        fetch(store, obj, dest, trust=trust, **change)
    assert dest.read_bytes() == b"the user's own file"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["w.bin"]


def test_an_entry_directory_is_emptied_and_the_file_made_read_only(stored, tmp_path: Path) -> None:
    store, obj = stored
    tmp = tmp_path / "cache" / "tmp"
    dest = tmp_path / "cache" / "assets" / f"1-A_{obj.md5}" / "w.bin"
    dest.parent.mkdir(parents=True)
    (dest.parent / "left-by-a-crash.bin").write_bytes(b"x")
    fetch_into_place(
        store,
        obj.url,
        obj.md5,
        dest,
        tmp_parent=tmp,
        prefix="1-A.",
        length=obj.length,
        progress=None,
        trust_store_md5=True,
        entry_dir=True,
    )
    assert sorted(p.name for p in dest.parent.iterdir()) == ["w.bin"]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o444
    assert list(tmp.iterdir()) == []
