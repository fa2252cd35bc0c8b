"""File names are data, not paths: validation and the object URL shape (pure; no I/O).

An asset's file name is whatever the user called the file: spaces, several dots (``model.tar.gz``),
no extension (``README``) and non-ASCII letters are all fine. What is refused is anything that would
be read as a *path*: an empty name, ``.``, ``..``, a name containing ``/``, ``\\`` or NUL, or an
absolute or drive-relative path (``/etc/passwd``, ``C:\\x``, ``C:x`` — on Windows the last one
escapes the directory it is written to). ``run:1.log`` is a plain name.

Both object stores address an object by the same URL::

    /hatrac/<Table>/<md5 hex>.<filename percent-encoded with urllib.parse.quote(name, safe="")>
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from deriva_ml.core.errors import InvalidFileName, ValidationError

__all__ = ["HATRAC_PREFIX", "object_url", "parse_object_url", "validate_filename", "validate_md5"]

HATRAC_PREFIX = "/hatrac"

_MD5_RE = re.compile(r"[0-9a-f]{32}")
_DRIVE_RE = re.compile(r"[A-Za-z]:")


def validate_filename(name: object, *, what: str = "filename") -> str:
    """Return ``name`` unchanged if it is a valid file name, else raise :class:`InvalidFileName`.

    The message names the value and the rule it breaks.
    """
    if not isinstance(name, str):
        raise InvalidFileName(f"{what}={name!r} is not a valid file name: expected a string")
    rule: str | None = None
    if name == "":
        rule = "it is empty"
    elif name in (".", ".."):
        rule = f"{name!r} names a directory, not a file"
    elif "\x00" in name:
        rule = "it contains a NUL character"
    elif name.startswith(("/", "\\")) or _DRIVE_RE.match(name):
        rule = "it is an absolute or drive-relative path"
    elif "/" in name:
        rule = "it contains the path separator '/'"
    elif "\\" in name:
        rule = "it contains the path separator '\\'"
    if rule is not None:
        raise InvalidFileName(
            f"{what}={name!r} is not a valid file name: {rule}. A file name is a single name such as "
            f"'model.tar.gz', 'my model.pt' or 'README' (no '/', '\\' or NUL; not '', '.' or '..')"
        )
    return name


def validate_md5(md5: object) -> str:
    """Return ``md5`` if it is 32 lower-case hex digits, else raise :class:`ValidationError`."""
    if not isinstance(md5, str) or not _MD5_RE.fullmatch(md5):
        raise ValidationError(f"md5={md5!r} is not a valid MD5: expected 32 lower-case hex digits")
    return md5


def object_url(table: str, md5: str, filename: str) -> str:
    """The URL of an object with this content (hex MD5) and file name in ``table``."""
    validate_filename(table, what="table")
    validate_md5(md5)
    validate_filename(filename)
    return f"{HATRAC_PREFIX}/{quote(table, safe='')}/{md5}.{quote(filename, safe='')}"


def parse_object_url(url: str) -> tuple[str, str, str]:
    """Split an object URL into ``(table, md5, filename)``; inverse of :func:`object_url`.

    Raises:
        ValidationError: ``url`` does not have the shape ``/hatrac/<Table>/<md5>.<quoted filename>``.
    """
    bad = ValidationError(
        f"url={url!r} is not an object URL: expected '/hatrac/<Table>/<md5>.<percent-encoded filename>'"
    )
    if not isinstance(url, str) or not url.startswith(HATRAC_PREFIX + "/"):
        raise bad
    parts = url[len(HATRAC_PREFIX) + 1 :].split("/")
    if len(parts) != 2:
        raise bad
    table_q, leaf = parts
    md5, dot, name_q = leaf.partition(".")
    if not dot or not _MD5_RE.fullmatch(md5):
        raise bad
    try:
        table, filename = unquote(table_q, errors="strict"), unquote(name_q, errors="strict")
        validate_filename(table, what="table")
        validate_filename(filename)
    except (InvalidFileName, UnicodeDecodeError) as exc:
        raise bad from exc
    if object_url(table, md5, filename) != url:  # only the canonical encoding is accepted
        raise bad
    return table, md5, filename
