"""Issue 12.1: an object URL from a catalog row never sends the credential to another host.

A real HTTP server on 127.0.0.1 plays the foreign host and records every request it receives (and any
``Authorization`` header); the configured server is the Hatrac protocol server. Every hostile URL must
be refused with :class:`UntrustedURL` before any request, by both stores.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hatrac_server import HatracTestServer, SleepRecorder, make_store

from deriva_ml.core.errors import UploadFailed
from deriva_ml.store.hatrac import HatracObjectStore
from deriva_ml.store.local import LocalObjectStore
from deriva_ml.store.names import UntrustedURL, resolve_object_url
from deriva_ml.store.port import UploadOptions

M = "0123456789abcdef0123456789abcdef"


class Recorder:
    """A foreign HTTP server that answers 200 to everything and records what it got."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str | None]] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _any(self) -> None:
                recorder.requests.append((self.command, self.path, self.headers.get("Authorization")))
                body = b"stolen"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_PUT = do_POST = _any

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def hostport(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{host}:{port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def foreign() -> Iterator[Recorder]:
    r = Recorder()
    yield r
    r.close()


def hostile_urls(foreign: str, ours: str) -> list[str]:
    """``ours`` is ``host:port`` of the configured server, ``foreign`` the recorder's."""
    ours_host, _, ours_port = ours.partition(":")
    return [
        f"http://{foreign}/hatrac/T/{M}.x",  # another host (here: another port of 127.0.0.1)
        f"https://{foreign}/hatrac/T/{M}.x",
        f"//{foreign}/hatrac/T/{M}.x",  # scheme-relative
        f"http://{ours}@{foreign}/hatrac/T/{M}.x",  # user-info trick: the host is the foreign one
        f"http://user:pw@{ours}/hatrac/T/{M}.x",  # user-info on our own host: refused too
        f"https://{ours}/hatrac/T/{M}.x",  # our host, other scheme
        f"http://localhost:{ours_port}/hatrac/T/{M}.x",  # same machine, another name: not configured
        f"http://{ours_host}:1/hatrac/T/{M}.x",  # other port
        f"http://{ours}/other/{M}.x",  # our host, outside /hatrac/
        f"http://{ours}/hatrac/T/{M}.x?redirect=http://{foreign}/",
        "file:///etc/passwd",
        f"/hatrac/T/../../../{foreign}/x",  # '..' segments
        "/hatrac/T/%2e%2e/%2e%2e/x",
        f"/hatrac/T/..%2F..%2F{M}.x",  # percent-encoded slashes
        "/hatrac/T/x%5C..%5Cy",
        f"/\\{foreign}/hatrac/T/x",
        f"\\\\{foreign}\\hatrac\\T\\x",
        "/hatrac/T/x\r\nHost: evil",
        f"http:/{foreign}/hatrac/T/{M}.x",
        f"HTTP://{foreign}/hatrac/T/{M}.x",
        f"javascript:alert(1)//{foreign}",
    ]


def test_hatrac_store_refuses_foreign_urls_before_any_request(
    foreign: Recorder, hatrac_server: HatracTestServer, tmp_path: Path
) -> None:
    store = HatracObjectStore(
        hatrac_server.url,
        credential={"bearer-token": "s3cret"},
        sleep=SleepRecorder(),
        jitter=None,
        options=UploadOptions(timeout=(5.0, 5.0), max_retries=0, retry_delay=0.1),
    )
    ours = hatrac_server.url.split("://", 1)[1]
    for url in hostile_urls(foreign.hostport, ours):
        with pytest.raises(UntrustedURL) as info:
            store.get(url, tmp_path / "out")
        assert repr(url) in str(info.value)
        with pytest.raises(UntrustedURL):
            store.stat(url)
        assert not (tmp_path / "out").exists()
    assert foreign.requests == []  # not one request, so no Authorization header either
    assert hatrac_server.count() == 0
    store.close()


def test_local_store_refuses_absolute_and_escaping_urls(foreign: Recorder, tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "store")
    for url in [*hostile_urls(foreign.hostport, "127.0.0.1:9"), f"http://127.0.0.1:9/hatrac/T/{M}.x"]:
        with pytest.raises(UntrustedURL):
            store.get(url, tmp_path / "out")
        with pytest.raises(UntrustedURL):
            store.stat(url)
    assert foreign.requests == []


def test_same_origin_absolute_urls_and_configured_alternatives(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    store = make_store(hatrac_server)
    src = tmp_path / "a.bin"
    src.write_bytes(b"abc")
    obj = store.put(src, table="T", filename="a.bin")
    port = hatrac_server.url.rsplit(":", 1)[1]
    assert store.get(hatrac_server.url + obj.url, tmp_path / "1").read_bytes() == b"abc"
    assert store.get(f"HTTP://127.0.0.1:{port}{obj.url}", tmp_path / "2").read_bytes() == b"abc"  # case
    alias = f"http://localhost:{port}"
    with pytest.raises(UntrustedURL):
        store.get(alias + obj.url, tmp_path / "3")
    trusting = make_store(hatrac_server, allowed_origins=[alias])
    assert trusting.get(alias + obj.url, tmp_path / "3").read_bytes() == b"abc"  # sent to the configured server
    assert hatrac_server.requests[-1].headers["host"].startswith("127.0.0.1")


def test_default_ports_are_the_same_origin() -> None:
    assert resolve_object_url(f"https://example.org:443/hatrac/T/{M}.x", "https://example.org").md5 == M
    assert resolve_object_url(f"http://example.org/hatrac/T/{M}.x", "http://example.org:80").md5 == M
    with pytest.raises(UntrustedURL):
        resolve_object_url(f"http://example.org/hatrac/T/{M}.x", "https://example.org")


def test_a_500_that_cannot_heal_is_not_retried(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    """Issue 10.3: the real server's ``[Errno 36] File name too long`` is final: no 4 x retry, no sleep."""
    sleeps = SleepRecorder()
    store = make_store(hatrac_server, sleep=sleeps)
    src = tmp_path / "f.bin"
    src.write_bytes(b"x" * 10)
    hatrac_server.fail("PUT", r".", status=500, times=None, message="[Errno 36] File name too long: '/var/www/x'")
    with pytest.raises(UploadFailed, match="File name too long"):
        store.put(src, table="T", filename="f.bin")
    assert hatrac_server.count("PUT") == 1 and sleeps.delays == []
    hatrac_server.clear_faults()
    hatrac_server.fail("PUT", r".", status=500, times=1, message="database is busy")  # may heal: retried
    assert store.put(src, table="T", filename="f.bin").length == 10
    assert sleeps.delays == [0.5]


def test_head_of_an_empty_object_without_content_length(hatrac_server: HatracTestServer, tmp_path: Path) -> None:
    """Issue 10: the real server sends no Content-Length on a HEAD of a 0-byte object."""
    store = make_store(hatrac_server)
    src = tmp_path / "empty"
    src.write_bytes(b"")
    obj = store.put(src, table="T", filename="empty")
    hatrac_server.reset_counts()
    stat = store.stat(obj.url)
    assert stat == obj and stat.length == 0
    assert store.put(src, table="T", filename="empty") == obj  # 412 + HEAD: recognised as the same bytes
