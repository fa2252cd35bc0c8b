"""The exception hierarchy of deriva_ml.

Every exception derives from :class:`DerivaMLException` and, where one fits, from a builtin
(``ValueError``, ``KeyError``, ``LookupError``, ``RuntimeError``, ``OSError``) so that callers can
catch either. Each message names the bad value and, where there is a finite set, what would be valid.

The tree::

    DerivaMLException
    ├── ValidationError (ValueError)          bad value given by the caller
    │   ├── InvalidRID
    │   ├── InvalidVersion
    │   ├── InvalidFileName
    │   └── ConfigurationError                malformed configuration.json / records
    ├── InvalidTransition (ValueError)        illegal status change
    ├── NotFound (LookupError)
    │   ├── UnknownCatalog (KeyError)        no catalog of that name/id (lists those that exist)
    │   ├── RIDNotFound (KeyError)
    │   │   └── WrongTable                   the RID is a row of another table
    │   ├── UnknownTable (KeyError)
    │   │   └── NotAVocabulary               the table exists but is not a vocabulary
    │   ├── UnknownColumn (KeyError)
    │   └── UnknownTerm (KeyError)
    ├── CatalogError                          the catalog refused or failed
    │   ├── ConflictError                     duplicate key / unique violation (409)
    │   ├── ForeignKeyError                   reference to a missing row
    │   ├── PermissionDenied (PermissionError)  401 / 403
    │   ├── CatalogBusy                       retryable: locked or temporarily unavailable
    │   └── CatalogUnreachable (ConnectionError)  no answer: connection refused, DNS, timeout
    ├── StoreError (OSError)                  object store failures
    │   ├── ChecksumMismatch                  bytes do not hash to the recorded MD5
    │   ├── ObjectNotFound (LookupError)      no object at that URL
    │   └── UploadFailed
    ├── DirtyWorkflow                         uncommitted source with allow_dirty=False
    └── ExecutionError (RuntimeError)         lifecycle misuse (e.g. upload before stop)
"""

from __future__ import annotations

from collections.abc import Iterable


class DerivaMLException(Exception):
    """Base class of every error raised by deriva_ml."""


def _choices(valid: Iterable[object], limit: int = 20) -> str:
    items = sorted(str(v) for v in valid)
    if not items:
        return "none are defined"
    shown = ", ".join(repr(i) for i in items[:limit])
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return shown + more


class ValidationError(DerivaMLException, ValueError):
    """A value given by the caller is malformed."""


class InvalidRID(ValidationError):
    """A string is not an ERMrest RID."""

    def __init__(self, value: object, field: str = "rid") -> None:
        self.value = value
        self.field = field
        super().__init__(
            f"{field}={value!r} is not a valid RID: expected ERMrest RID syntax such as '1-ABC1' or "
            f"'2-GHI' (upper-case letters and digits in hyphen-separated groups), optionally followed "
            f"by '@<snapshot>'"
        )


class InvalidVersion(ValidationError):
    """A string is not a semantic version ``MAJOR.MINOR.PATCH``."""

    def __init__(self, value: object, field: str = "version") -> None:
        self.value = value
        super().__init__(
            f"{field}={value!r} is not a semantic version: expected 'MAJOR.MINOR.PATCH' such as "
            f"'1.2.0', or a mapping {{'major': 1, 'minor': 2, 'patch': 0}}"
        )


class InvalidFileName(ValidationError):
    """A file name for an asset contains a path separator, is '..' or is absolute."""


class ConfigurationError(ValidationError):
    """A configuration document (configuration.json, a journal line, a manifest) is malformed."""


class InvalidTransition(DerivaMLException, ValueError):
    """A status change that the transition table does not allow."""

    def __init__(self, current: object, target: object, allowed: Iterable[object]) -> None:
        self.current = current
        self.target = target
        self.allowed = tuple(allowed)
        names = _choices(getattr(a, "value", a) for a in self.allowed) if self.allowed else "none (terminal)"
        cur = getattr(current, "value", current)
        tgt = getattr(target, "value", target)
        super().__init__(f"cannot change status from {cur!r} to {tgt!r}; allowed from {cur!r}: {names}")


class NotFound(DerivaMLException, LookupError):
    """Something looked up does not exist."""


def _message(self: BaseException) -> str:
    """``str()`` of the errors that are also ``KeyError``s: their message (``KeyError`` quotes it otherwise)."""
    return str(self.args[0])


class RIDNotFound(NotFound, KeyError):
    """No row in the catalog has this RID (or not in the expected table)."""

    def __init__(self, rid: object, table: str | None = None) -> None:
        self.rid = rid
        self.table = table
        where = f" in table {table!r}" if table else ""
        super().__init__(f"RID {rid!r} not found{where}")

    __str__ = _message


class WrongTable(RIDNotFound):
    """The RID exists, but is a row of another table than the one expected."""

    def __init__(self, rid: object, expected: str, actual: str) -> None:
        self.rid = rid
        self.table = expected
        self.actual = actual
        NotFound.__init__(self, f"RID {rid!r} is a row of table {actual!r}, not of table {expected!r}")


class UnknownCatalog(NotFound, KeyError):
    """No catalog with this name (embedded) or id (live); ``known`` lists those that exist."""

    def __init__(self, catalog: object, known: Iterable[object] | None = (), where: str = "") -> None:
        self.catalog = catalog
        self.known = None if known is None else tuple(known)
        at = f" {where}" if where else ""
        if self.known is None:  # a server that does not list its catalogs
            super().__init__(f"no catalog {catalog!r}{at}")
            return
        names = _choices(self.known) if self.known else "none"
        super().__init__(f"no catalog {catalog!r}{at}; existing catalogs: {names}")

    __str__ = _message


class UnknownTable(NotFound, KeyError):
    """A table name that the catalog model does not have."""

    def __init__(self, table: object, known: Iterable[object] = ()) -> None:
        self.table = table
        super().__init__(f"unknown table {table!r}; known tables: {_choices(known)}")

    __str__ = _message


class NotAVocabulary(UnknownTable):
    """A table that exists but is not a controlled vocabulary."""

    def __init__(self, table: object, vocabularies: Iterable[object] = ()) -> None:
        self.table = table
        NotFound.__init__(self, f"{table!r} is not a vocabulary table; vocabularies: {_choices(vocabularies)}")


class UnknownColumn(NotFound, KeyError):
    """A column name that a table does not have."""

    def __init__(self, table: object, column: object, known: Iterable[object] = ()) -> None:
        self.table = table
        self.column = column
        super().__init__(f"table {table!r} has no column {column!r}; its columns: {_choices(known)}")

    __str__ = _message


class UnknownTerm(NotFound, KeyError):
    """A term that is not in a controlled vocabulary."""

    def __init__(self, vocabulary: object, term: object, known: Iterable[object] = ()) -> None:
        self.vocabulary = vocabulary
        self.term = term
        super().__init__(f"{term!r} is not a term of vocabulary {vocabulary!r}; known terms: {_choices(known)}")

    __str__ = _message


class CatalogError(DerivaMLException):
    """The catalog refused an operation or failed while applying it."""


class ConflictError(CatalogError):
    """A write would violate a unique key (HTTP 409 on ERMrest)."""


class StatusConflict(ConflictError):
    """A compare-and-set status write lost a race: the catalog no longer holds the expected status.

    ``actual`` is the status the catalog holds now (``None`` when the row is gone).
    """

    def __init__(self, rid: object, expected: object, target: object, actual: object) -> None:
        self.rid = rid
        self.expected = getattr(expected, "value", expected)
        self.target = getattr(target, "value", target)
        self.actual = getattr(actual, "value", actual)
        now = "no longer exists" if actual is None else f"now holds {self.actual!r}"
        super().__init__(
            f"execution {rid}: status change {self.expected!r} -> {self.target!r} refused: the catalog {now} "
            f"(another handle or process changed it first)"
        )


class ForeignKeyError(CatalogError):
    """A write references a row that does not exist."""


class PermissionDenied(CatalogError, PermissionError):
    """The caller lacks the rights for an operation (HTTP 401/403)."""


class CatalogBusy(CatalogError):
    """The catalog is locked or temporarily unavailable; retrying later may succeed."""

    retryable = True


class CatalogUnreachable(CatalogError, ConnectionError):
    """The catalog's server does not answer (connection refused, unknown host, timeout).

    Unlike :class:`CatalogBusy` (the server answered: locked or unavailable) this usually means a wrong
    host name or a server that is down; retrying later may still succeed.
    """

    retryable = True


class StoreError(DerivaMLException, OSError):
    """The object store failed."""


class ChecksumMismatch(StoreError):
    """Bytes do not hash to the digest they were recorded with."""

    def __init__(self, what: object, expected: str, actual: str) -> None:
        self.what = what
        self.expected = expected
        self.actual = actual
        super().__init__(f"checksum mismatch for {what}: expected MD5 {expected}, got {actual}")


class ObjectNotFound(StoreError, NotFound):
    """The object store has no object at this URL."""


class UploadFailed(StoreError):
    """An upload failed after its retries were exhausted."""


class DirtyWorkflow(DerivaMLException):
    """The workflow's source has uncommitted changes and dirty runs are not allowed."""

    def __init__(self, paths: Iterable[str], repo: str | None = None) -> None:
        self.paths = tuple(paths)
        self.repo = repo
        where = f" in repository {repo}" if repo else ""
        shown = ", ".join(self.paths[:20]) + (f" (+{len(self.paths) - 20} more)" if len(self.paths) > 20 else "")
        super().__init__(
            f"uncommitted changes{where}: {shown}. Commit them, or pass allow_dirty=True "
            f"(or set DERIVA_ML_ALLOW_DIRTY=true) to run anyway"
        )


class ExecutionError(DerivaMLException, RuntimeError):
    """An execution was used in a way its lifecycle does not allow."""


__all__ = [
    "CatalogBusy",
    "CatalogError",
    "CatalogUnreachable",
    "ChecksumMismatch",
    "ConfigurationError",
    "ConflictError",
    "DerivaMLException",
    "DirtyWorkflow",
    "ExecutionError",
    "ForeignKeyError",
    "InvalidFileName",
    "InvalidRID",
    "InvalidTransition",
    "InvalidVersion",
    "NotAVocabulary",
    "NotFound",
    "ObjectNotFound",
    "PermissionDenied",
    "RIDNotFound",
    "StatusConflict",
    "StoreError",
    "UnknownCatalog",
    "UnknownColumn",
    "UnknownTable",
    "UnknownTerm",
    "UploadFailed",
    "ValidationError",
    "WrongTable",
]
