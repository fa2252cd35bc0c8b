"""One conformance suite for every ObjectStore: local, Hatrac (protocol server), Hatrac (live).

The live leg runs only when ``DERIVA_ML_TEST_HOST`` names a DERIVA server you are logged in to
(``deriva-globus-auth-utils login --host ...``); it writes under ``/hatrac/DerivaML_Store_Test``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hatrac_server import HatracTestServer, live_credential, make_store

from deriva_ml.core.errors import ChecksumMismatch, InvalidFileName, StoreError
from deriva_ml.store.local import LocalObjectStore
from deriva_ml.store.names import bounded_name, parse_object_url
from deriva_ml.store.port import ObjectStore, StoredObject, UploadOptions

TABLE = "DerivaML_Store_Test"
SMALL_CHUNKS = UploadOptions(timeout=(5.0, 10.0), chunk_size=64 * 1024, max_retries=2, retry_delay=0.1)


class Leg:
    """A store under test plus a way to count what it did (None when not observable)."""

    def __init__(self, name: str, store: Any, server: HatracTestServer | None = None) -> None:
        self.name = name
        self.store: ObjectStore = store
        self.server = server


@pytest.fixture(params=["local", "hatrac", "live"])
def leg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Leg]:
    if request.param == "local":
        yield Leg("local", LocalObjectStore(tmp_path / "store"))
    elif request.param == "hatrac":
        with HatracTestServer() as server:
            store = make_store(server)
            yield Leg("hatrac", store, server)
            store.close()
    else:
        host = os.environ.get("DERIVA_ML_TEST_HOST")
        if not host:
            pytest.skip("set DERIVA_ML_TEST_HOST to run the conformance suite against a live Hatrac")
        from deriva_ml.store.hatrac import HatracObjectStore

        store = HatracObjectStore(host, credential=live_credential(), session_config={"timeout": (10, 60)})
        yield Leg("live", store)
        store.close()


@pytest.fixture
def make_file(tmp_path: Path) -> Callable[..., Path]:
    src = tmp_path / "src"
    src.mkdir()

    def make(name: str = "data.bin", data: bytes | None = None, size: int = 1000) -> Path:
        p = src / name
        p.write_bytes(os.urandom(size) if data is None else data)
        return p

    return make


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_is_an_object_store(leg: Leg) -> None:
    assert isinstance(leg.store, ObjectStore)


def test_round_trip(leg: Leg, make_file: Callable[..., Path], tmp_path: Path) -> None:
    src = make_file("model.tar.gz")
    data = src.read_bytes()
    obj = leg.store.put(src, table=TABLE, filename="model.tar.gz")
    assert obj == StoredObject(
        url=leg.store.object_url(TABLE, md5(data), "model.tar.gz"),
        filename="model.tar.gz",
        length=len(data),
        md5=md5(data),
    )
    assert obj.url == f"/hatrac/{TABLE}/{md5(data)}.model.tar.gz"
    assert leg.store.stat(obj.url) == obj
    out = leg.store.get(obj.url, tmp_path / "out.bin")
    assert out == tmp_path / "out.bin"
    assert out.read_bytes() == data


def test_put_with_correct_md5(leg: Leg, make_file: Callable[..., Path], tmp_path: Path) -> None:
    src = make_file()
    data = src.read_bytes()
    obj = leg.store.put(src, table=TABLE, filename="weights.pt", md5=md5(data).upper())
    assert obj.md5 == md5(data)
    assert leg.store.get(obj.url, tmp_path / "w", md5=md5(data)).read_bytes() == data


@pytest.mark.parametrize(
    "name",
    [
        "my model.pt",
        "model.tar.gz",
        "README",
        ".hidden",
        "résumé ü.txt",
        "数据 集.csv",
        "odd;name:with%20and?#&+=.txt",
        "x" * 200,
        "a" * 251 + ".txt",  # 255 bytes of ASCII (the limit): the object name is bounded, not a 500
        "é" * 125 + ".csv",  # 254 bytes of 2-byte UTF-8
        "数" * 85,  # 255 bytes of 3-byte UTF-8
    ],
)
def test_odd_file_names(leg: Leg, make_file: Callable[..., Path], tmp_path: Path, name: str) -> None:
    src = make_file("src.bin", size=300)
    obj = leg.store.put(src, table=TABLE, filename=name)
    ref = parse_object_url(obj.url)
    assert (ref.table, ref.md5, ref.filename, ref.version) == (TABLE, md5(src.read_bytes()), bounded_name(name), None)
    assert len(obj.url.rsplit("/", 1)[1]) <= 200  # encoded: fits Hatrac's file-system backend (228)
    assert obj.filename == name  # the full name (the catalog's Filename; Content-Disposition)
    assert leg.store.stat(obj.url) == obj
    dest_dir = tmp_path / "dest"
    dest_dir.mkdir()
    out = leg.store.get(obj.url, dest_dir)  # a directory: the object's own name is used
    assert out == dest_dir / name
    assert out.read_bytes() == src.read_bytes()


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../up", "a\\b", "nul\x00byte", "/etc/passwd", "C:\\x"])
def test_invalid_file_names_rejected(leg: Leg, make_file: Callable[..., Path], name: str) -> None:
    src = make_file()
    with pytest.raises(InvalidFileName) as info:
        leg.store.put(src, table=TABLE, filename=name)
    assert repr(name) in str(info.value)
    if leg.server is not None:
        assert leg.server.count() == 0  # rejected before any request


@pytest.mark.parametrize("table", ["", "..", "a/b"])
def test_invalid_table_rejected(leg: Leg, make_file: Callable[..., Path], table: str) -> None:
    with pytest.raises(InvalidFileName):
        leg.store.put(make_file(), table=table, filename="x.bin")


def test_put_is_idempotent(leg: Leg, make_file: Callable[..., Path]) -> None:
    src = make_file("a.bin")
    first = leg.store.put(src, table=TABLE, filename="a.bin")
    if leg.server is not None:
        leg.server.reset_counts()
    second = leg.store.put(src, table=TABLE, filename="a.bin")
    third = leg.store.put(src, table=TABLE, filename="a.bin", md5=first.md5)
    assert first == second == third
    if leg.server is not None:
        assert leg.server.calls() == [("PUT", first.url), ("HEAD", first.url)] * 2  # 412, then MD5 check
    if isinstance(leg.store, LocalObjectStore):
        blobs = [p for p in (leg.store.root / "objects").rglob("*") if p.is_file()]
        assert len(blobs) == 1
        assert not any((leg.store.root / "tmp").iterdir())


def test_same_bytes_other_name_is_another_object(leg: Leg, make_file: Callable[..., Path]) -> None:
    src = make_file()
    a = leg.store.put(src, table=TABLE, filename="a.bin")
    b = leg.store.put(src, table=TABLE, filename="b.bin")
    assert a.md5 == b.md5 and a.url != b.url
    assert leg.store.stat(a.url) == a and leg.store.stat(b.url) == b


@pytest.mark.parametrize("size", [100, 200 * 1024 + 7])  # one request / chunked (with SMALL_CHUNKS)
def test_md5_mismatch_rejected_nothing_stored(
    leg: Leg, make_file: Callable[..., Path], tmp_path: Path, size: int
) -> None:
    src = make_file(size=size)
    wrong = md5(b"something else")
    with pytest.raises(ChecksumMismatch) as info:
        leg.store.put(src, table=TABLE, filename="m.bin", md5=wrong, options=SMALL_CHUNKS)
    assert info.value.expected == wrong and info.value.actual == md5(src.read_bytes())
    assert leg.store.stat(leg.store.object_url(TABLE, wrong, "m.bin")) is None
    assert leg.store.stat(leg.store.object_url(TABLE, md5(src.read_bytes()), "m.bin")) is None
    if isinstance(leg.store, LocalObjectStore):
        assert [p for p in leg.store.root.rglob("*") if p.is_file()] == []
    if leg.server is not None:
        assert not any(leg.server.objects.values()) and leg.server.jobs == {}  # no content stored


def test_stat_missing_is_none(leg: Leg) -> None:
    assert leg.store.stat(leg.store.object_url(TABLE, md5(os.urandom(16)), "nothing.bin")) is None


def test_get_missing_raises(leg: Leg, tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        leg.store.get(leg.store.object_url(TABLE, md5(os.urandom(16)), "nothing.bin"), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_get_with_wrong_md5_leaves_nothing(leg: Leg, make_file: Callable[..., Path], tmp_path: Path) -> None:
    obj = leg.store.put(make_file(), table=TABLE, filename="g.bin")
    dest = tmp_path / "g.bin"
    with pytest.raises(ChecksumMismatch):
        leg.store.get(obj.url, dest, md5=md5(b"not it"))
    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_get_replaces_existing_dest(leg: Leg, make_file: Callable[..., Path], tmp_path: Path) -> None:
    obj = leg.store.put(make_file(), table=TABLE, filename="r.bin")
    dest = tmp_path / "r.bin"
    dest.write_bytes(b"old")
    leg.store.get(obj.url, dest)
    assert md5(dest.read_bytes()) == obj.md5


def test_progress_reports_bytes(leg: Leg, make_file: Callable[..., Path], tmp_path: Path) -> None:
    size = 300 * 1024 + 11
    src = make_file(size=size)
    up: list[tuple[int, int]] = []
    obj = leg.store.put(
        src, table=TABLE, filename="p.bin", options=SMALL_CHUNKS, progress=lambda d, t: up.append((d, t))
    )
    assert up and up[-1] == (size, size)
    assert all(t == size for _, t in up)
    assert [d for d, _ in up] == sorted(d for d, _ in up)
    down: list[tuple[int, int]] = []
    leg.store.get(obj.url, tmp_path / "p.out", progress=lambda d, t: down.append((d, t)))
    assert down and down[-1] == (size, size)
    assert [d for d, _ in down] == sorted(d for d, _ in down)


def test_empty_file(leg: Leg, make_file: Callable[..., Path], tmp_path: Path) -> None:
    src = make_file("empty", data=b"")
    calls: list[tuple[int, int]] = []
    obj = leg.store.put(src, table=TABLE, filename="empty", progress=lambda d, t: calls.append((d, t)))
    assert obj.length == 0 and obj.md5 == md5(b"")
    assert calls[-1] == (0, 0)
    assert leg.store.stat(obj.url) == obj
    out = leg.store.get(obj.url, tmp_path / "empty.out")
    assert out.read_bytes() == b""


def test_multi_chunk_file(leg: Leg, make_file: Callable[..., Path], tmp_path: Path) -> None:
    size = 5 * 64 * 1024 - 3  # five chunks, the last one short
    src = make_file(size=size)
    data = src.read_bytes()
    obj = leg.store.put(src, table=TABLE, filename="big.bin", options=SMALL_CHUNKS)
    assert (obj.length, obj.md5) == (size, md5(data))
    assert leg.store.stat(obj.url) == obj
    assert leg.store.get(obj.url, tmp_path / "big.out").read_bytes() == data
    if leg.server is not None:
        assert leg.server.count("PUT", r";upload/[^/]+/\d+$") == 5
        assert leg.server.count("POST", r";upload/[^/]+$") == 1  # one finalize
        assert leg.server.object_bytes(obj.url) == data


def test_object_url_is_pure_and_shared(leg: Leg, tmp_path: Path) -> None:
    m = md5(b"x")
    expected = f"/hatrac/{TABLE}/{m}.my%20model.tar.gz"
    assert leg.store.object_url(TABLE, m, "my model.tar.gz") == expected
    assert LocalObjectStore(tmp_path / "other").object_url(TABLE, m, "my model.tar.gz") == expected
    if leg.server is not None:
        assert leg.server.count() == 0


# -- issue 10: deleted names, versioned URLs, empty objects on the real server -------------------------


def _delete_object(leg: Leg, url: str) -> None:
    """Delete an object on the server (raw DELETE; Hatrac legs only)."""
    store: Any = leg.store
    r = store._session.request("DELETE", store.server_url + url, timeout=30)
    assert r.status_code == 204, r.text


def test_content_whose_name_was_deleted_can_be_stored_again(
    leg: Leg, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    """A deleted Hatrac name can never be created again (409): the store moves on to ``<md5>-1.<name>``."""
    if isinstance(leg.store, LocalObjectStore):
        pytest.skip("the local store has no deletion")
    for size, opts in ((100, None), (3 * 64 * 1024 + 1, SMALL_CHUNKS)):  # one PUT, and an upload job
        src = make_file(f"d{size}.bin", size=size)
        first = leg.store.put(src, table=TABLE, filename="deleted.bin", options=opts)
        _delete_object(leg, first.url)
        assert leg.store.stat(first.url) is None
        again = leg.store.put(src, table=TABLE, filename="deleted.bin", options=opts)
        ref = parse_object_url(again.url)
        assert again.url != first.url and ref.md5 == first.md5 and again.url.split("/")[-1].startswith(f"{ref.md5}-1.")
        assert (again.length, again.md5, again.filename) == (size, md5(src.read_bytes()), "deleted.bin")
        assert leg.store.get(again.url, tmp_path / f"d{size}.out").read_bytes() == src.read_bytes()
        assert leg.store.put(src, table=TABLE, filename="deleted.bin", options=opts) == again  # idempotent


def test_versioned_and_absolute_urls_of_the_server_are_read(
    leg: Leg, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    """deriva-py records ``/hatrac/<T>/<md5>.<name>:<VERSION>``; an absolute URL of the server is fine too."""
    if isinstance(leg.store, LocalObjectStore):
        pytest.skip("the local store has no versions and no server")
    src = make_file(size=500)
    obj = leg.store.put(src, table=TABLE, filename="v.bin")
    store: Any = leg.store
    head = store._session.request("HEAD", store.server_url + obj.url, timeout=30)
    versioned = head.headers["Content-Location"]
    assert versioned.startswith(obj.url + ":")
    stat = leg.store.stat(versioned)
    assert stat is not None and (stat.md5, stat.length, stat.filename, stat.url) == (obj.md5, 500, "v.bin", versioned)
    assert leg.store.get(versioned, tmp_path / "v.out", md5=obj.md5).read_bytes() == src.read_bytes()
    absolute = store.server_url + versioned
    assert leg.store.get(absolute, tmp_path / "abs.out").read_bytes() == src.read_bytes()
    dest_dir = tmp_path / "dir"
    dest_dir.mkdir()
    assert leg.store.get(versioned, dest_dir) == dest_dir / "v.bin"  # the name from Content-Disposition
