"""Shared by the live legs: the lab server from the environment, and a request log at the HTTP boundary.

A live leg runs only when ``DERIVA_ML_TEST_HOST`` names a DERIVA server where catalogs may be created
(``DERIVA_ML_TEST_CREDENTIAL_FILE`` optionally gives a deriva-py credential file; ``REQUESTS_CA_BUNDLE``
its certificate authority). Without it the leg is skipped; CI runs the fakes.

:class:`HttpLog` counts every request any ``requests`` session of this process sends (deriva-py's catalog
bindings, the Hatrac store's session, retries included) by wrapping ``HTTPAdapter.send`` — the last
step before the socket — so the same count holds on the fakes and on a real server.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

ENV_HOST = "DERIVA_ML_TEST_HOST"
ENV_CREDENTIAL = "DERIVA_ML_TEST_CREDENTIAL_FILE"


def live_host() -> str | None:
    return os.environ.get(ENV_HOST) or None


def require_live() -> str:
    """The live host, or skip the test."""
    host = live_host()
    if not host:
        pytest.skip(f"set {ENV_HOST} to run this leg against a live DERIVA server")
    return host


def live_credential() -> dict[str, str] | None:
    """The credential for the live host from ``DERIVA_ML_TEST_CREDENTIAL_FILE`` (None: deriva-py's lookup)."""
    path = os.environ.get(ENV_CREDENTIAL)
    if not path:
        return None
    data = json.loads(Path(path).read_text())
    host = os.environ[ENV_HOST]
    found = data.get(host, data) if isinstance(data, dict) else None
    return dict(found) if isinstance(found, dict) else None


def new_live_catalog(project: str = "test") -> tuple[str, str, dict[str, str] | None]:
    """A fresh deriva-ml catalog on the live server: ``(host, catalog_id, credential)`` (skips without one)."""
    from deriva_ml.catalog.ermrest import create_ml_catalog

    host = require_live()
    cred = live_credential()
    cat = create_ml_catalog(host, project, credential=cred)
    catalog_id = cat.catalog_id
    cat.close()
    return host, catalog_id, cred


def unique_token() -> str:
    """A token that makes object content (and so content-addressed Hatrac names) unique to this run.

    A deleted Hatrac name can never be created again, so live legs never reuse one across runs.
    """
    return uuid.uuid4().hex[:12]


class HttpLog:
    """Requests sent while active: ``(method, service, path)`` with service ``ermrest``/``hatrac``/other."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()

    def record(self, method: str, url: str) -> None:
        path = urlsplit(url).path
        parts = path.split("/")
        service = parts[1] if len(parts) > 1 else ""
        with self._lock:
            self.entries.append((method, service, path))

    def mark(self) -> int:
        return len(self.entries)

    def since(self, mark: int) -> list[tuple[str, str, str]]:
        return self.entries[mark:]

    def count(self, mark: int = 0, *, service: str | None = None, method: str | None = None) -> int:
        return sum(
            1
            for m, s, _ in self.entries[mark:]
            if (service is None or s == service) and (method is None or m == method)
        )

    def summary(self, mark: int = 0) -> dict[str, int]:
        return dict(Counter(f"{m} {s}" for m, s, _ in self.entries[mark:]))


@contextmanager
def http_log() -> Iterator[HttpLog]:
    """Count every HTTP request this process sends while the block runs."""
    from requests.adapters import HTTPAdapter

    log = HttpLog()
    original = HTTPAdapter.send

    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        log.record(request.method, request.url)
        return original(self, request, *args, **kwargs)

    HTTPAdapter.send = send  # type: ignore[method-assign]
    try:
        yield log
    finally:
        HTTPAdapter.send = original  # type: ignore[method-assign]
