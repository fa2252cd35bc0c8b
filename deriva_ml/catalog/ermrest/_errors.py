"""ERMrest's HTTP answers as deriva_ml errors: the status and the server's message mapped to the error
that names the bad value (unknown table or column, key or foreign-key conflict, permission, busy), and
whether a 503 says the request was rolled back (so it may be sent again)."""

from __future__ import annotations

import re
from typing import Any

from deriva_ml.core.errors import (
    CatalogBusy,
    CatalogError,
    ConflictError,
    ForeignKeyError,
    NotFound,
    PermissionDenied,
    UnknownColumn,
    UnknownTable,
    ValidationError,
)

_ROLLED_BACK_TEXTS = ("transaction aborted", "resources unavailable")


def rolled_back(text: str) -> bool:
    """Whether a 503 body says ERMrest rolled the request's transaction back (so it may be sent again)."""
    low = text.lower()
    return any(t in low for t in _ROLLED_BACK_TEXTS)


def _named(error: Exception, msg: str) -> Exception:
    """``error`` (its type and fields) with the server's message."""
    error.args = (msg,)
    return error


def translate(response: Any, what: str, table: str | None) -> Exception:
    """The error for an HTTP error ``response`` to the request ``what`` (on ``table``, when one)."""
    status = getattr(response, "status_code", 0)
    try:
        text = response.text if response is not None else ""
    except Exception:  # pragma: no cover - defensive
        text = ""
    detail = " ".join(text.split())[:500]
    low = detail.lower()
    msg = f"{what}: {detail or status}"
    if status in (401, 403):
        return PermissionDenied(msg)
    if status == 409:
        # model/schema.py, model/table.py: ConflictModel "Table T does not exist in schema S." /
        # "Requested column C does not exist in table T." (also for a table created after the snapshot read)
        m = re.search(r"(?:Requested )?table (.+?) does not exist in schema (.+?)\.", detail, re.IGNORECASE)
        if m:
            return _named(UnknownTable(f"{m.group(2)}:{m.group(1)}"), msg)
        m = re.search(r"Requested column (.+?) does not exist in table (.+?)\.", detail)
        if m:
            return _named(UnknownColumn(m.group(2), m.group(1)), msg)
        m = re.search(r"Schema (.+?) does not exist\.", detail)
        if m:
            return _named(UnknownTable(f"{m.group(1)}:{table or '?'}"), msg)
        if "foreign key" in low or "violates foreign" in low or "is not present in table" in low:
            return ForeignKeyError(msg)
        if "null value" in low or "not-null" in low:
            return ValidationError(msg)
        return ConflictError(msg)
    request = getattr(response, "request", None)
    sent = len(getattr(request, "path_url", "") or "")
    if status == 414 or (status == 404 and sent > 4000):
        # Apache, not ERMrest: the request line or decoded path is too long (see URL_BUDGET)
        return ValidationError(f"{what}: the server refused the URL as too long ({status}); lower url_budget")
    if status == 404:
        return NotFound(msg)
    if status in (502, 503, 504) or "lock" in low:
        return CatalogBusy(msg + " (retry later)")
    if status == 400:
        if "share the same unique key" in low:  # ERMrest: duplicate keys within one request body
            return ConflictError(msg)
        return ValidationError(msg)
    return CatalogError(msg)
