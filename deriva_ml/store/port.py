"""The object-store port: where asset bytes live.

Two real implementations share one conformance suite (``tests/store/``):

- :mod:`deriva_ml.store.local` — a content-addressed directory, the embedded default;
- :mod:`deriva_ml.store.hatrac` — a Hatrac object store on a live DERIVA server.

Objects are addressed by the URL recorded in an asset row's ``URL`` column. Both stores use the same
URL shape, ``/hatrac/<Table>/<md5>.<quoted filename>``, so that an execution recorded offline can be
replayed into a live catalog with identical provenance.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import attrs

#: Called as ``progress(bytes_done, bytes_total)`` while bytes move.
ProgressCallback = Callable[[int, int], None]

DEFAULT_CHUNK_SIZE = 50 * 1024 * 1024


@attrs.frozen
class UploadOptions:
    """How to move bytes to a store (the spec's ``upload_execution_outputs`` parameters)."""

    timeout: tuple[float, float] = (600.0, 600.0)
    chunk_size: int = DEFAULT_CHUNK_SIZE
    max_retries: int = 3
    retry_delay: float = 5.0


@attrs.frozen
class StoredObject:
    """An object the store holds: its URL, length in bytes and hex MD5."""

    url: str
    filename: str
    length: int
    md5: str


@runtime_checkable
class ObjectStore(Protocol):
    """Put, get and stat objects by URL."""

    def object_url(self, table: str, md5: str, filename: str) -> str:
        """The URL an object with this content and name gets in ``table`` (pure; no I/O)."""
        ...

    def put(
        self,
        path: Path,
        *,
        table: str,
        filename: str,
        md5: str | None = None,
        options: UploadOptions | None = None,
        progress: ProgressCallback | None = None,
    ) -> StoredObject:
        """Store the file at ``path``; idempotent: storing the same bytes twice makes one object."""
        ...

    def get(
        self,
        url: str,
        dest: Path,
        *,
        md5: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> Path:
        """Write the object's bytes to ``dest`` atomically, verifying ``md5`` when given."""
        ...

    def stat(self, url: str) -> StoredObject | None:
        """Length and MD5 of the object at ``url``, or ``None`` when there is none."""
        ...
