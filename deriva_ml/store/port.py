"""The object-store port: where asset bytes live.

Two real implementations share one conformance suite (``tests/store/``):

- :mod:`deriva_ml.store.local` — a content-addressed directory, the embedded default;
- :mod:`deriva_ml.store.hatrac` — a Hatrac object store on a live DERIVA server.

Objects are addressed by the URL recorded in an asset row's ``URL`` column. Both stores use the same
URL shape, ``/hatrac/<Table>/<md5>.<quoted filename>``, so that an execution recorded offline can be
replayed into a live catalog with identical provenance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import attrs

from deriva_ml.core.errors import ValidationError

if TYPE_CHECKING:
    from deriva_ml.store.names import ObjectRef

#: Called as ``progress(bytes_done, bytes_total)`` while bytes move.
ProgressCallback = Callable[[int, int], None]

DEFAULT_CHUNK_SIZE = 50 * 1024 * 1024


def _positive_pair(instance: object, attribute: attrs.Attribute[tuple[float, float]], value: object) -> None:
    if not (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        raise ValidationError(
            f"{attribute.name}={value!r} is not valid: expected (connect_seconds, read_seconds), both > 0"
        )


def _int_at_least(low: int) -> Callable[[object, attrs.Attribute[int], object], None]:
    def check(instance: object, attribute: attrs.Attribute[int], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValidationError(f"{attribute.name}={value!r} is not valid: expected an integer >= {low}")

    return check


def _non_negative(instance: object, attribute: attrs.Attribute[float], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValidationError(f"{attribute.name}={value!r} is not valid: expected a number >= 0")


def _pair(value: Iterable[float]) -> tuple[float, float]:
    items = tuple(value)
    if len(items) != 2:
        raise ValidationError(f"timeout={items!r} must be a pair (connect_timeout, read_timeout) in seconds")
    return items[0], items[1]


@attrs.frozen
class UploadOptions:
    """How to move bytes to a store (the spec's ``upload_execution_outputs`` parameters).

    ``timeout`` is ``(connect, read)`` seconds per HTTP request (per chunk for chunked uploads);
    ``chunk_size`` the bytes per chunk (files no larger than one chunk go in one request);
    ``max_retries`` the retries per request after the first attempt; ``retry_delay`` the first
    back-off delay in seconds, doubling per retry (see :func:`deriva_ml.core.retry.backoff_delays`).
    """

    timeout: tuple[float, float] = attrs.field(default=(600.0, 600.0), converter=_pair, validator=_positive_pair)
    chunk_size: int = attrs.field(default=DEFAULT_CHUNK_SIZE, validator=_int_at_least(1))
    max_retries: int = attrs.field(default=3, validator=_int_at_least(0))
    retry_delay: float = attrs.field(default=5.0, validator=_non_negative)


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


@runtime_checkable
class SyncingStore(ObjectStore, Protocol):
    """A store view whose puts are atomic but become durable only at :meth:`sync`."""

    def sync(self) -> int:
        """Make every object put through this view durable; returns the number of sync calls made."""
        ...


@runtime_checkable
class DeferredDurability(Protocol):
    """Optional capability: batch the durability of many puts (the local store; Hatrac's are durable on reply).

    Callers must call ``sync()`` on the view before anything that references its objects is committed.
    """

    def deferred(self) -> SyncingStore:
        """A view of the same store whose puts defer their fsyncs until its ``sync()``."""
        ...


@runtime_checkable
class LocalPaths(Protocol):
    """Optional capability: the local file holding an object (the embedded store), for read-only use."""

    def path_of(self, url: str) -> Path | None:
        """The file holding the object at ``url``, or ``None`` if there is none."""
        ...


@runtime_checkable
class CheckedURLs(Protocol):
    """Optional capability: the trust gate for catalog-supplied object URLs (both stores implement it)."""

    def check_url(self, url: object) -> ObjectRef:
        """Parse ``url``, refusing anything not on this store's server (``UntrustedURL``), before any request."""
        ...


@runtime_checkable
class ServerURL(Protocol):
    """Optional capability: the ``scheme://host[:port]`` of a remote store's server."""

    @property
    def server_url(self) -> str: ...


__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "CheckedURLs",
    "DeferredDurability",
    "LocalPaths",
    "ObjectStore",
    "ProgressCallback",
    "ServerURL",
    "StoredObject",
    "SyncingStore",
    "UploadOptions",
]
