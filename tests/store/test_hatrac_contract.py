"""The Hatrac contract: the same raw requests against the fake and (when configured) the real server.

Each test is one row of the contract table in ``docs/object-stores.md``. The fake must answer what the
real server answers; the live leg (``DERIVA_ML_TEST_HOST``) proves it. Every run uses a fresh namespace
(a deleted Hatrac name can never be created again, so names are never reused).
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hatrac_server import HatracTestServer, live_host, live_session

NS_CT = {"Content-Type": "application/x-hatrac-namespace"}


class Target:
    def __init__(self, base: str, session: Any) -> None:
        self.base = base
        self.session = session
        self.ns = f"/hatrac/DerivaML_Contract_{uuid.uuid4().hex[:10]}"
        r = self.request("PUT", self.ns + "?parents=true", headers=NS_CT)
        assert r.status_code == 201, r.text

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.base + path, **kwargs)


@pytest.fixture(params=["fake", "live"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "fake":
        import requests

        with HatracTestServer() as server:
            session = requests.Session()
            session.trust_env = False
            yield Target(server.url, session)
            session.close()
    else:
        host = live_host()
        if not host:
            pytest.skip("set DERIVA_ML_TEST_HOST to run the Hatrac contract against a live server")
        session = live_session()
        yield Target(f"https://{host}", session)
        session.close()


def b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_object_name_over_the_backend_limit_is_a_500(target: Target) -> None:
    ok = target.request("PUT", f"{target.ns}/{'x' * 223}", data=b"x")
    assert ok.status_code == 201
    r = target.request("PUT", f"{target.ns}/{'x' * 240}", data=b"x")
    assert r.status_code == 500 and "File name too long" in r.text
    # the limit applies to the percent-encoded name: 40 x 'é' is 80 bytes of UTF-8 but 240 encoded
    r = target.request("PUT", f"{target.ns}/{'é' * 40}", data=b"x")
    assert r.status_code == 500
    job = {"chunk-length": 4, "content-length": 8}
    r = target.request("POST", f"{target.ns}/{'y' * 240};upload", json=job)
    assert r.status_code == 500 and "File name too long" in r.text


def test_head_of_an_empty_object_has_no_content_length(target: Target) -> None:
    assert target.request("PUT", f"{target.ns}/empty", data=b"", headers={"Content-MD5": b64(b"")}).status_code == 201
    head = target.request("HEAD", f"{target.ns}/empty")
    assert head.status_code == 200 and "Content-Length" not in head.headers
    assert head.headers["Content-MD5"] == b64(b"")
    get = target.request("GET", f"{target.ns}/empty")
    assert get.status_code == 200 and get.headers["Content-Length"] == "0" and get.content == b""


def test_a_deleted_name_can_never_be_created_again(target: Target) -> None:
    name = f"{target.ns}/gone"
    assert target.request("PUT", name, data=b"x").status_code == 201
    assert target.request("DELETE", name).status_code == 204
    assert target.request("HEAD", name).status_code == 404
    assert target.request("GET", name).status_code == 404
    assert target.request("PUT", name, data=b"x", headers={"If-None-Match": "*"}).status_code == 409
    assert target.request("PUT", name, data=b"x").status_code == 409
    job = {"chunk-length": 4, "content-length": 8}
    assert target.request("POST", f"{name};upload", json=job).status_code == 409


def test_content_md5_in_hex_is_accepted_and_reported_in_base64(target: Target) -> None:
    data = b"hello"
    r = target.request("PUT", f"{target.ns}/hex", data=data, headers={"Content-MD5": hashlib.md5(data).hexdigest()})
    assert r.status_code == 201
    assert target.request("HEAD", f"{target.ns}/hex").headers["Content-MD5"] == b64(data)


def test_if_none_match_on_an_existing_object_is_412(target: Target) -> None:
    assert target.request("PUT", f"{target.ns}/one", data=b"1").status_code == 201
    assert target.request("PUT", f"{target.ns}/one", data=b"2", headers={"If-None-Match": "*"}).status_code == 412
    assert target.request("GET", f"{target.ns}/one").content == b"1"


def test_finalising_with_chunks_missing_checks_only_the_md5(target: Target) -> None:
    data = b"aaaabbbbcccc"
    job_spec = {"chunk-length": 4, "content-length": 12, "content-md5": b64(data)}
    job = target.request("POST", f"{target.ns}/chunky;upload", json=job_spec).text.strip().splitlines()[0]
    assert target.request("PUT", f"{job}/0", data=b"aaaa").status_code == 204
    assert target.request("PUT", f"{job}/2", data=b"cccc").status_code == 204
    assert target.request("POST", job).status_code == 409  # MD5 mismatch (chunk 1 reads as zeros)
    assert target.request("GET", f"{target.ns}/chunky").status_code == 409  # a name with no content
    job = target.request("POST", f"{target.ns}/nomd5;upload", json={"chunk-length": 4, "content-length": 8})
    job_url = job.text.strip().splitlines()[0]
    assert target.request("PUT", f"{job_url}/1", data=b"bbbb").status_code == 204
    assert target.request("POST", job_url).status_code == 201  # accepted: nothing to check
    assert target.request("GET", f"{target.ns}/nomd5").content == b"\0\0\0\0bbbb"


def test_versions_are_addressable_and_the_name_is_the_default_file_name(target: Target) -> None:
    first = target.request("PUT", f"{target.ns}/a%20b%3Ac.txt", data=b"one")
    assert first.status_code == 201
    loc1 = first.text.strip()
    assert loc1.startswith(f"{target.ns}/a%20b%3Ac.txt:")
    assert target.request("PUT", f"{target.ns}/a%20b%3Ac.txt", data=b"two").status_code == 201
    assert target.request("GET", loc1).content == b"one"
    assert target.request("GET", f"{target.ns}/a%20b%3Ac.txt").content == b"two"
    assert target.request("GET", f"{target.ns}/a%20b%3Ac.txt:NOSUCHVERSION").status_code == 404
    head = target.request("HEAD", loc1)
    assert head.headers["Content-Location"] == loc1
    assert head.headers["Content-Disposition"] == "filename*=UTF-8''a%20b%3Ac.txt"
