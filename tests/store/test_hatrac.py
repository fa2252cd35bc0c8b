"""Hatrac-specific behaviour against the protocol server: request counts, resume, retries, timeouts."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from hatrac_server import HatracTestServer, SleepRecorder, make_store

from deriva_ml.core.errors import ChecksumMismatch, PermissionDenied, StoreError, UploadFailed
from deriva_ml.store.hatrac import HatracObjectStore
from deriva_ml.store.port import UploadOptions

T = "Execution_Asset"
CHUNK = 64 * 1024
CHUNKED = UploadOptions(timeout=(5.0, 10.0), chunk_size=CHUNK, max_retries=2, retry_delay=0.5)
CHUNK_PUT = r";upload/[^/]+/\d+$"


def write(tmp_path: Path, size: int, name: str = "f.bin") -> Path:
    p = tmp_path / name
    p.write_bytes(os.urandom(size))
    return p


def md5(p: Path) -> str:
    return hashlib.md5(p.read_bytes()).hexdigest()


def precreate_namespace(server: HatracTestServer) -> None:
    server.namespaces.add(f"/hatrac/{T}")


# -- request counts ---------------------------------------------------------------------------------


def test_small_file_upload_is_one_put(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    """No HEAD before the PUT: ``If-None-Match: *`` already guards against overwriting (issue 10)."""
    precreate_namespace(hatrac_server)
    store = make_store(hatrac_server)
    files = [write(tmp_path, 1000, f"f{i}.bin") for i in range(10)]
    objs = [store.put(f, table=T, filename=f.name) for f in files]
    assert hatrac_server.calls() == [("PUT", o.url) for o in objs]  # one request per object
    put = hatrac_server.requests[0]
    assert put.headers["if-none-match"] == "*"
    assert put.headers["content-md5"] and put.headers["content-disposition"] == "filename*=UTF-8''f0.bin"


def test_missing_namespace_created_only_after_404(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    store = make_store(hatrac_server)
    obj = store.put(write(tmp_path, 10, "a"), table=T, filename="a")
    assert hatrac_server.calls() == [
        ("PUT", obj.url),  # 404: no namespace yet
        ("PUT", f"/hatrac/{T}?parents=true"),
        ("PUT", obj.url),
    ]
    assert hatrac_server.requests[1].headers["content-type"] == "application/x-hatrac-namespace"
    hatrac_server.reset_counts()
    obj2 = store.put(write(tmp_path, 10, "b"), table=T, filename="b")
    assert hatrac_server.calls() == [("PUT", obj2.url)]


def test_already_stored_is_put_412_then_head(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    store = make_store(hatrac_server)
    src = write(tmp_path, 5000)
    obj = store.put(src, table=T, filename="f.bin")
    hatrac_server.reset_counts()
    assert make_store(hatrac_server).put(src, table=T, filename="f.bin") == obj
    assert hatrac_server.calls() == [("PUT", obj.url), ("HEAD", obj.url)]
    assert len(hatrac_server.objects[obj.url]) == 1


def test_chunked_upload_requests(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    precreate_namespace(hatrac_server)
    store = make_store(hatrac_server)
    src = write(tmp_path, 3 * CHUNK + 5)
    obj = store.put(src, table=T, filename="f.bin", options=CHUNKED)
    calls = hatrac_server.calls()
    job = calls[2][1].rsplit("/", 1)[0]
    assert calls == [
        ("HEAD", obj.url),
        ("POST", obj.url + ";upload"),
        *[("PUT", f"{job}/{i}") for i in range(4)],
        ("POST", job),
    ]
    assert hatrac_server.object_bytes(obj.url) == src.read_bytes()
    assert hatrac_server.jobs == {}


def test_chunked_upload_creates_a_missing_namespace_after_404(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    """The upload job takes the same namespace path as the single PUT: one namespace PUT, then the job again."""
    store = make_store(hatrac_server)
    src = write(tmp_path, 2 * CHUNK + 1)
    obj = store.put(src, table=T, filename="f.bin", options=CHUNKED)
    calls = hatrac_server.calls()
    job = calls[-1][1]
    assert calls == [
        ("HEAD", obj.url),
        ("POST", obj.url + ";upload"),  # 404: no namespace yet
        ("PUT", f"/hatrac/{T}?parents=true"),
        ("POST", obj.url + ";upload"),
        *[("PUT", f"{job}/{i}") for i in range(3)],
        ("POST", job),
    ]
    assert hatrac_server.object_bytes(obj.url) == src.read_bytes()


def test_single_put_up_to_exactly_one_chunk(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    precreate_namespace(hatrac_server)
    store = make_store(hatrac_server)
    store.put(write(tmp_path, CHUNK), table=T, filename="f.bin", options=CHUNKED)
    assert hatrac_server.count("POST") == 0 and hatrac_server.count("PUT") == 1


def test_stat_and_get_are_one_request_each(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    store = make_store(hatrac_server)
    obj = store.put(write(tmp_path, 100), table=T, filename="f.bin")
    hatrac_server.reset_counts()
    store.stat(obj.url)
    store.get(obj.url, tmp_path / "out")
    assert hatrac_server.calls() == [("HEAD", obj.url), ("GET", obj.url)]


# -- resumability -----------------------------------------------------------------------------------


def test_resume_after_dropped_connection_skips_finished_chunks(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    precreate_namespace(hatrac_server)
    state_dir = tmp_path / "state"
    src = write(tmp_path, 5 * CHUNK - 100)
    hatrac_server.drop("PUT", r";upload/[^/]+/2$", times=None)  # chunk 2 never gets through
    sleeps = SleepRecorder()
    first = make_store(hatrac_server, state_dir=state_dir, sleep=sleeps)
    with pytest.raises(UploadFailed) as info:
        first.put(src, table=T, filename="f.bin", options=CHUNKED)
    assert "/2 failed after 3 attempts" in str(info.value)
    assert sleeps.delays == [0.5, 1.0]
    assert len(list(state_dir.glob("*.json"))) == 1

    hatrac_server.clear_faults()
    second = make_store(hatrac_server, state_dir=state_dir)  # a new process, same state dir
    obj = second.put(src, table=T, filename="f.bin", options=CHUNKED)
    assert hatrac_server.object_bytes(obj.url) == src.read_bytes()
    assert hatrac_server.count("POST", r";upload$") == 1  # one job, resumed
    assert hatrac_server.count("GET", r";upload/[^/]+$") == 1  # job status checked once
    assert hatrac_server.count("PUT", r";upload/[^/]+/0$") == 1
    assert hatrac_server.count("PUT", r";upload/[^/]+/1$") == 1
    assert hatrac_server.count("PUT", r";upload/[^/]+/2$") == 4  # 3 dropped + 1
    assert hatrac_server.count("PUT", r";upload/[^/]+/3$") == 1
    assert hatrac_server.count("PUT", r";upload/[^/]+/4$") == 1
    assert list(state_dir.glob("*.json")) == []  # state removed once finalized


def test_resume_in_memory_within_one_store(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    precreate_namespace(hatrac_server)
    src = write(tmp_path, 3 * CHUNK)
    hatrac_server.fail("PUT", r";upload/[^/]+/1$", status=503, times=3)
    store = make_store(hatrac_server)
    with pytest.raises(UploadFailed):
        store.put(src, table=T, filename="f.bin", options=CHUNKED)
    store.put(src, table=T, filename="f.bin", options=CHUNKED)
    assert hatrac_server.count("PUT", r";upload/[^/]+/0$") == 1
    assert hatrac_server.count("POST", r";upload$") == 1


def test_resume_with_vanished_job_starts_a_new_one(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    precreate_namespace(hatrac_server)
    src = write(tmp_path, 3 * CHUNK)
    hatrac_server.fail("PUT", r";upload/[^/]+/2$", status=500, times=None)
    store = make_store(hatrac_server, state_dir=tmp_path / "state")
    with pytest.raises(UploadFailed):
        store.put(src, table=T, filename="f.bin", options=CHUNKED)
    hatrac_server.clear_faults()
    hatrac_server.jobs.clear()  # the server expired the job
    obj = store.put(src, table=T, filename="f.bin", options=CHUNKED)
    assert hatrac_server.object_bytes(obj.url) == src.read_bytes()
    assert hatrac_server.count("POST", r";upload$") == 2
    assert hatrac_server.count("PUT", r";upload/[^/]+/0$") == 2


def test_corrupt_state_file_is_ignored(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    src = write(tmp_path, 2 * CHUNK + 1)
    hatrac_server.fail("POST", r";upload/[^/]+$", status=500, times=None)  # finalize fails
    store = make_store(hatrac_server, state_dir=state_dir)
    with pytest.raises(UploadFailed):
        store.put(src, table=T, filename="f.bin", options=CHUNKED)
    (state_file,) = state_dir.glob("*.json")
    state_file.write_text("{not json")
    hatrac_server.clear_faults()
    obj = store.put(src, table=T, filename="f.bin", options=CHUNKED)
    assert hatrac_server.object_bytes(obj.url) == src.read_bytes()


def test_chunked_md5_mismatch_cancels_job(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    src = write(tmp_path, 2 * CHUNK + 1)
    store = make_store(hatrac_server, state_dir=tmp_path / "state")
    with pytest.raises(ChecksumMismatch):
        store.put(src, table=T, filename="f.bin", md5="0" * 32, options=CHUNKED)
    assert hatrac_server.count("DELETE", r";upload/[^/]+$") == 1
    assert hatrac_server.jobs == {} and not any(hatrac_server.objects.values())
    assert list((tmp_path / "state").glob("*.json")) == []


# -- retries, timeouts, errors ----------------------------------------------------------------------


def test_500s_are_retried_then_succeed(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    precreate_namespace(hatrac_server)
    sleeps = SleepRecorder()
    store = make_store(hatrac_server, sleep=sleeps)
    src = write(tmp_path, 100)
    hatrac_server.fail("PUT", r"/hatrac/", status=500, times=2)
    obj = store.put(src, table=T, filename="f.bin")
    assert hatrac_server.count("PUT") == 3
    assert sleeps.delays == [0.5, 1.0]  # retry_delay 0.5, doubling, no jitter
    assert hatrac_server.object_bytes(obj.url) == src.read_bytes()


def test_jitter_and_cap_shape_the_delays(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    sleeps = SleepRecorder()
    store = make_store(hatrac_server, sleep=sleeps, jitter=lambda n: [0.5] * n, retry_cap=1.0)
    hatrac_server.fail("PUT", r".", status=503, times=3)
    store.put(write(tmp_path, 10), table=T, filename="f.bin")
    assert sleeps.delays == [0.75, 1.0, 1.0]


def test_exhausted_retries_raise_upload_failed_naming_the_url(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    precreate_namespace(hatrac_server)
    sleeps = SleepRecorder()
    store = make_store(hatrac_server, sleep=sleeps)
    src = write(tmp_path, 100)
    hatrac_server.fail("PUT", r".", status=502, times=None)
    with pytest.raises(UploadFailed) as info:
        store.put(src, table=T, filename="f.bin")
    url = store.object_url(T, md5(src), "f.bin")
    assert url in str(info.value) and "HTTP 502" in str(info.value)
    assert hatrac_server.count("PUT") == 4  # 1 + max_retries
    assert len(sleeps.delays) == 3


def test_timeouts_are_honoured_and_retried(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    precreate_namespace(hatrac_server)
    sleeps = SleepRecorder()
    opts = UploadOptions(timeout=(2.0, 0.2), max_retries=2, retry_delay=0.5)
    store = make_store(hatrac_server, sleep=sleeps)
    hatrac_server.delay("PUT", r".", seconds=1.0, times=1)
    start = time.monotonic()
    obj = store.put(write(tmp_path, 100), table=T, filename="f.bin", options=opts)
    elapsed = time.monotonic() - start
    assert elapsed < 0.9, f"the 0.2 s read timeout was not applied ({elapsed:.2f} s)"
    assert sleeps.delays == [0.5]
    assert hatrac_server.count("PUT") == 2
    assert store.stat(obj.url) is not None


def test_timeouts_exhausted(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    opts = UploadOptions(timeout=(2.0, 0.1), max_retries=1, retry_delay=0.0)
    store = make_store(hatrac_server)
    hatrac_server.delay("PUT", r".", seconds=0.5, times=None)
    with pytest.raises(UploadFailed, match="Timeout"):
        store.put(write(tmp_path, 10), table=T, filename="f.bin", options=opts)
    assert hatrac_server.count("PUT") == 2


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures_map_to_permission_denied(hatrac_server: HatracTestServer, tmp_path: Path, status: int) -> None:
    store = make_store(hatrac_server)
    hatrac_server.fail("PUT", r".", status=status, times=None)
    with pytest.raises(PermissionDenied) as info:
        store.put(write(tmp_path, 10), table=T, filename="f.bin")
    assert f"HTTP {status}" in str(info.value)
    assert hatrac_server.count("PUT") == 1  # not retried
    hatrac_server.fail("HEAD", r".", status=status, times=None)
    with pytest.raises(PermissionDenied):
        store.stat(store.object_url(T, "0" * 32, "x"))


def test_other_client_errors_are_upload_failed(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    store = make_store(hatrac_server)
    hatrac_server.fail("PUT", r".", status=400, times=None)
    with pytest.raises(UploadFailed, match="HTTP 400"):
        store.put(write(tmp_path, 10), table=T, filename="f.bin")


def test_existing_object_with_other_md5_is_not_overwritten(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    store = make_store(hatrac_server)
    src = write(tmp_path, 100)
    obj = store.put(src, table=T, filename="f.bin")
    hatrac_server.objects[obj.url][-1].metadata["content-md5"] = "AAAAAAAAAAAAAAAAAAAAAA=="
    with pytest.raises(UploadFailed, match="already holds different bytes"):
        store.put(src, table=T, filename="f.bin")


def test_get_retries_a_dropped_download(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    sleeps = SleepRecorder()
    store = make_store(hatrac_server, sleep=sleeps)
    src = write(tmp_path, 200_000)
    obj = store.put(src, table=T, filename="f.bin")
    hatrac_server.drop("GET", r".", times=1)
    out = store.get(obj.url, tmp_path / "out")
    assert out.read_bytes() == src.read_bytes()
    assert hatrac_server.count("GET") == 2 and len(sleeps.delays) == 1


def test_get_verifies_content_md5(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    store = make_store(hatrac_server)
    obj = store.put(write(tmp_path, 100), table=T, filename="f.bin")
    hatrac_server.corrupt(obj.url, b"x" * 100)  # bit rot on the server
    with pytest.raises(ChecksumMismatch):
        store.get(obj.url, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_get_exhausted_is_store_error(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    store = make_store(hatrac_server)
    obj = store.put(write(tmp_path, 100), table=T, filename="f.bin")
    hatrac_server.fail("GET", r".", status=500, times=None)
    with pytest.raises(StoreError, match="failed after 4 attempts"):
        store.get(obj.url, tmp_path / "out")


# -- deriva-py session ------------------------------------------------------------------------------


def test_deriva_session_has_no_hidden_retries_and_sends_credentials(
    hatrac_server: HatracTestServer, tmp_path: Path
) -> None:
    sleeps = SleepRecorder()
    store = HatracObjectStore(
        hatrac_server.url,
        credential={"bearer-token": "t0ken"},
        sleep=sleeps,
        jitter=None,
        options=UploadOptions(timeout=(5.0, 5.0), max_retries=1, retry_delay=0.1),
    )
    session = store._session
    assert isinstance(session, requests.Session)
    adapter = session.get_adapter(hatrac_server.url)
    retry = adapter.max_retries
    assert (retry.connect, retry.read, set(retry.status_forcelist or ())) == (0, 0, set())
    hatrac_server.fail("PUT", r".", status=503, times=None)
    with pytest.raises(UploadFailed):
        store.put(write(tmp_path, 10), table=T, filename="f.bin")
    assert hatrac_server.count("PUT") == 2  # ours (1 + 1 retry), nothing from urllib3
    assert all(r.headers.get("authorization") == "Bearer t0ken" for r in hatrac_server.requests)
    hatrac_server.clear_faults()
    obj = store.put(write(tmp_path, 10, "g"), table=T, filename="g")
    assert store.stat(obj.url) == obj
    store.close()


def test_server_url_forms() -> None:
    session = requests.Session()
    assert HatracObjectStore("example.org", session=session).server_url == "https://example.org"
    assert HatracObjectStore("http://127.0.0.1:8080/", session=session).server_url == "http://127.0.0.1:8080"
    with pytest.raises(StoreError):
        HatracObjectStore("ftp://x", session=session)


def test_importing_deriva_ml_does_not_import_deriva_or_requests() -> None:
    code = (
        "import sys, deriva_ml, deriva_ml.store, deriva_ml.store.port, deriva_ml.store.local, "
        "deriva_ml.store.names, deriva_ml.core.retry\n"
        "bad = [m for m in ('deriva', 'requests', 'deriva_ml.store.hatrac') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "import deriva_ml.store.hatrac\n"
        "assert 'deriva' not in sys.modules, 'hatrac.py must import deriva-py lazily'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_concurrent_puts_share_one_store(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    """Parallel uploads (the execution uploads with several workers) race on namespace creation safely."""
    from concurrent.futures import ThreadPoolExecutor

    store = make_store(hatrac_server)
    files = [write(tmp_path, 1000 + i * CHUNK // 2, f"f{i}") for i in range(8)]
    with ThreadPoolExecutor(4) as pool:
        objs = list(pool.map(lambda p: store.put(p, table=T, filename=p.name, options=CHUNKED), files))
    for p, obj in zip(files, objs, strict=True):
        assert hatrac_server.object_bytes(obj.url) == p.read_bytes()
    assert hatrac_server.jobs == {}


# -- conditional object PUT (REST-API.md "Object Creation and Update") --------------------------------------


def test_server_put_to_existing_object_adds_a_version_unless_if_none_match(
    hatrac_server: HatracTestServer,
) -> None:
    """Documented: PUT creates 'a new object or a new version of an existing object'; If-None-Match: * → 412."""
    url = hatrac_server.url + "/hatrac/x?parents=true"
    assert requests.put(url, data=b"a", timeout=5).status_code == 201
    assert requests.put(url, data=b"b", timeout=5).status_code == 201
    assert len(hatrac_server.objects["/hatrac/x"]) == 2
    assert requests.put(url, data=b"c", headers={"If-None-Match": "*"}, timeout=5).status_code == 412
    assert len(hatrac_server.objects["/hatrac/x"]) == 2


def test_single_put_is_conditional_and_a_412_is_checked(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    store = make_store(hatrac_server)
    src = write(tmp_path, 100)
    obj = store.put(src, table=T, filename="f.bin")
    assert hatrac_server.requests[-1].headers["if-none-match"] == "*"
    # the object exists already (another writer, or a second upload): 412, then a HEAD checks the MD5
    hatrac_server.reset_counts()
    assert store.put(src, table=T, filename="f.bin") == obj
    assert hatrac_server.calls() == [("PUT", obj.url), ("HEAD", obj.url)]
    assert len(hatrac_server.objects[obj.url]) == 1  # no second version
    # ... other bytes under the name: refused
    hatrac_server.objects[obj.url][-1].metadata["content-md5"] = "AAAAAAAAAAAAAAAAAAAAAA=="
    with pytest.raises(UploadFailed, match="different bytes"):
        store.put(src, table=T, filename="f.bin")
    assert len(hatrac_server.objects[obj.url]) == 1
