"""Optional store capabilities are explicit protocols (``isinstance``), not attribute probing."""

from __future__ import annotations

from pathlib import Path

from hatrac_server import HatracTestServer

from deriva_ml.store.hatrac import HatracObjectStore
from deriva_ml.store.local import LocalObjectStore
from deriva_ml.store.port import CheckedURLs, DeferredDurability, LocalPaths, ObjectStore, ServerURL


def test_local_store_capabilities(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    assert isinstance(store, ObjectStore)
    assert isinstance(store, LocalPaths) and isinstance(store, CheckedURLs) and isinstance(store, DeferredDurability)
    assert not isinstance(store, ServerURL)
    src = tmp_path / "a.bin"
    src.write_bytes(b"abc")
    obj = store.put(src, table="Model", filename="a.bin")
    path = store.path_of(obj.url)
    assert path is not None and path.read_bytes() == b"abc"


def test_hatrac_store_capabilities(hatrac_server: HatracTestServer) -> None:
    store = HatracObjectStore(hatrac_server.url, credential={}, jitter=None)
    assert isinstance(store, ObjectStore)
    assert isinstance(store, CheckedURLs) and isinstance(store, ServerURL)
    assert not isinstance(store, LocalPaths) and not isinstance(store, DeferredDurability)
    assert store.server_url == hatrac_server.url.rstrip("/")
