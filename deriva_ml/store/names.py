"""File names are data, not paths: validation, the object URL shape and URL trust (pure; no I/O).

An asset's file name is whatever the user called the file: spaces, several dots (``model.tar.gz``),
no extension (``README``) and non-ASCII letters are all fine. What is refused is anything that would
be read as a *path*: an empty name, ``.``, ``..``, a name containing ``/``, ``\\`` or NUL, or an
absolute or drive-relative path (``/etc/passwd``, ``C:\\x``, ``C:x`` — on Windows the last one
escapes the directory it is written to). ``run:1.log`` is a plain name. Also refused: names longer
than :data:`MAX_NAME_BYTES` (255) bytes of UTF-8 (the file-system limit), control characters (C0, DEL,
C1: a name containing a newline or an escape sequence prints as something else) and bidirectional
controls (``U+202E`` etc.: ``gpj.exe`` displayed as ``exe.jpg``). Names are normalised to Unicode NFC,
so ``é`` typed as one code point and as ``e`` + combining accent are one name (never two assets that
display the same).

Both object stores address an object by the same URL::

    /hatrac/<Table>/<md5 hex>.<bounded filename, percent-encoded with urllib.parse.quote(name, safe="")>

The file-name part of the object name is the file name itself when its percent-encoded form has at
most :data:`OBJECT_NAME_BUDGET` characters; a longer one is cut at a character boundary and ends in
``~`` + 10 hex digits of the SHA-256 of the full name (+ its extension), e.g.
``aaaa…aaa~3f2c9d0e1b.csv``. Hatrac's file-system backend stores the percent-encoded object name plus
``:<26-char version>`` as one file, so an encoded name over 228 bytes fails with HTTP 500 (measured). The full name
always stays in the catalog's ``Filename`` column and in the object's ``Content-Disposition``.
When a Hatrac name was deleted it can never be created again; the store then writes
``<md5>-<n>.<name>`` (n = 1, 2, ...), still content-addressed.

Reading accepts more than we write (:func:`parse_object_url`): any Hatrac object path, with or without
a ``:<version>`` suffix, e.g. deriva-py's ``/hatrac/<Table>/<md5>.<name>:<VERSION>``.
:func:`resolve_object_url` is the trust gate every catalog-supplied URL passes before a request.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit

import attrs

from deriva_ml.core.errors import InvalidFileName, ValidationError

__all__ = [
    "HATRAC_PREFIX",
    "MAX_NAME_BYTES",
    "OBJECT_NAME_BUDGET",
    "ObjectRef",
    "UntrustedURL",
    "bounded_name",
    "object_url",
    "origin_of",
    "parse_object_url",
    "resolve_object_url",
    "validate_filename",
    "validate_md5",
]

HATRAC_PREFIX = "/hatrac"

#: Longest file name, in bytes of UTF-8 (NAME_MAX of common file systems).
MAX_NAME_BYTES = 255

#: Longest file-name part of an object name, in characters of its percent-encoded form. The encoded
#: object name is ``<32 hex>[-<n>].<part>`` (at most 197 bytes); Hatrac's file-system backend stores
#: ``<encoded name>:<26-char version>`` as one file, so encoded names over 228 bytes fail (HTTP 500).
OBJECT_NAME_BUDGET = 160
_SEGMENT_RE = re.compile(r"(?:[A-Za-z0-9_.~-]|%[0-9A-Fa-f]{2})+")

_MD5_RE = re.compile(r"[0-9a-f]{32}")
_DRIVE_RE = re.compile(r"[A-Za-z]:")
_LEAF_RE = re.compile(r"(?P<md5>[0-9a-f]{32})(?:-(?P<gen>[1-9][0-9]{0,2}))?\.(?P<name>.+)", re.DOTALL)
_VERSION_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: C0 controls, DEL and C1 controls.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: Bidirectional formatting characters (marks, embeddings, overrides, isolates).
_BIDI_RE = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class UntrustedURL(ValidationError):
    """A URL from a catalog row is not an object path of the configured server; nothing was sent."""


def validate_filename(name: object, *, what: str = "filename") -> str:
    """Return ``name`` in Unicode NFC if it is a valid file name, else raise :class:`InvalidFileName`.

    The message names the value and the rule it breaks.
    """
    if not isinstance(name, str):
        raise InvalidFileName(f"{what}={name!r} is not a valid file name: expected a string")
    rule: str | None = None
    nfc = unicodedata.normalize("NFC", name)
    size = len(nfc.encode("utf-8", "surrogatepass"))
    if name == "":
        rule = "it is empty"
    elif name in (".", ".."):
        rule = f"{name!r} is not allowed (it names a directory, not a file)"
    elif "\x00" in name:
        rule = "it contains a NUL character"
    elif name.startswith(("/", "\\")) or _DRIVE_RE.match(name):
        rule = "it is an absolute or drive-relative path"
    elif "/" in name:
        rule = "it contains the path separator '/'"
    elif "\\" in name:
        rule = "it contains the path separator '\\'"
    elif (m := _CONTROL_RE.search(name)) is not None:
        rule = f"it contains the control character U+{ord(m.group()):04X}"
    elif (m := _BIDI_RE.search(name)) is not None:
        rule = f"it contains the bidirectional formatting character U+{ord(m.group()):04X}"
    elif any(0xD800 <= ord(c) <= 0xDFFF for c in name):
        rule = "it contains a lone surrogate (not valid Unicode text)"
    elif size > MAX_NAME_BYTES:
        rule = f"it is {size} bytes of UTF-8, longer than the limit of {MAX_NAME_BYTES} bytes"
    if rule is not None:
        raise InvalidFileName(
            f"{what}={name!r} is not a valid file name: {rule}. A file name is a single name such as "
            f"'model.tar.gz', 'my model.pt' or 'README' (no '/', '\\', NUL, control or bidirectional "
            f"characters; not '', '.' or '..'; at most {MAX_NAME_BYTES} bytes of UTF-8)"
        )
    return nfc


def validate_md5(md5: object) -> str:
    """Return ``md5`` if it is 32 lower-case hex digits, else raise :class:`ValidationError`."""
    if not isinstance(md5, str) or not _MD5_RE.fullmatch(md5):
        raise ValidationError(f"md5={md5!r} is not a valid MD5: expected 32 lower-case hex digits")
    return md5


def _encoded_len(text: str) -> int:
    return len(quote(text, safe=""))


def bounded_name(filename: str, budget: int = OBJECT_NAME_BUDGET) -> str:
    """``filename`` if its percent-encoded form has at most ``budget`` characters, else a bounded form.

    The bounded form keeps the start of the name (whole characters, so UTF-8 is never split), then ``~``
    and 10 hex digits of the SHA-256 of the full name, then the extension (when its encoded form has at
    most 16 characters), so distinct long names get distinct object names.
    """
    if _encoded_len(filename) <= budget:
        return filename
    digest = hashlib.sha256(filename.encode("utf-8")).hexdigest()[:10]
    stem, dot, ext = filename.rpartition(".")
    suffix = "." + ext if dot and stem and 0 < _encoded_len(ext) <= 16 else ""
    if not suffix:
        stem = filename
    room = budget - _encoded_len(suffix) - 1 - len(digest)
    cut, used = [], 0
    for ch in stem:
        used += _encoded_len(ch)
        if used > room:
            break
        cut.append(ch)
    return f"{''.join(cut)}~{digest}{suffix}"


def object_url(table: str, md5: str, filename: str, *, generation: int = 0) -> str:
    """The URL of an object with this content (hex MD5) and file name in ``table``.

    ``generation`` > 0 gives the alternative name ``<md5>-<generation>.<name>`` used when the plain
    name was deleted on the server (a deleted Hatrac name can never be created again).
    """
    table = validate_filename(table, what="table")
    validate_md5(md5)
    filename = validate_filename(filename)
    if isinstance(generation, bool) or not isinstance(generation, int) or not 0 <= generation <= 999:
        raise ValidationError(f"generation={generation!r} is not valid: expected an integer 0..999")
    gen = f"-{generation}" if generation else ""
    return f"{HATRAC_PREFIX}/{quote(table, safe='')}/{md5}{gen}.{quote(bounded_name(filename), safe='')}"


@attrs.frozen
class ObjectRef:
    """A parsed Hatrac object URL (see :func:`parse_object_url`).

    ``path`` is the server-relative path without the version (segments kept as given when they are in
    Hatrac's form — unreserved characters and ``%XX`` — else encoded with ``quote(segment, safe="")``);
    ``url`` adds ``:<version>`` back. ``md5`` is the MD5 the object name
    promises (ours and deriva-py's ``<md5>.<name>``), else ``None``; ``filename`` is the object name
    without that prefix (for long names a bounded form: the full name is in the catalog).
    """

    path: str
    version: str | None
    table: str
    name: str
    md5: str | None
    filename: str

    @property
    def url(self) -> str:
        return self.path if self.version is None else f"{self.path}:{self.version}"


def _bad(url: object, why: str) -> UntrustedURL:
    return UntrustedURL(
        f"url={url!r} is not a Hatrac object URL of this server: {why}. Expected a server-relative path "
        f"'/hatrac/<namespace>/<object>[:<version>]' (or the same path as an absolute URL on the "
        f"configured server); nothing was requested"
    )


def parse_object_url(url: object) -> ObjectRef:
    """Parse a server-relative Hatrac object path (ours, deriva-py's versioned form, or any other).

    Accepted: ``/hatrac/<ns>[/<ns>...]/<object>`` with an optional ``:<version>`` suffix, segments
    percent-encoded in any way that decodes to UTF-8. Refused with :class:`UntrustedURL` (a
    :class:`ValidationError`): anything absolute (``https://...``, ``//host/...``), a query, fragment,
    ``;`` sub-resource, backslash, control character or whitespace other than a space, empty, ``.`` or
    ``..`` segments (raw or percent-encoded), percent-encoded ``/`` or ``\\``.
    """
    if not isinstance(url, str):
        raise _bad(url, "not a string")
    if not url.startswith(HATRAC_PREFIX + "/"):
        raise _bad(url, "it does not start with '/hatrac/'")
    if (m := re.search(r"[\x00-\x1f\x7f\\?#;]", url)) is not None:
        raise _bad(url, f"it contains {m.group()!r}")
    segments = url[len(HATRAC_PREFIX) + 1 :].split("/")
    if len(segments) < 2:
        raise _bad(url, "it names no object inside a namespace")
    leaf_raw = segments[-1]
    version: str | None = None
    if ":" in leaf_raw:
        leaf_raw, _, version = leaf_raw.rpartition(":")
        if not _VERSION_RE.fullmatch(version):
            raise _bad(url, f"{version!r} is not a Hatrac version")
    decoded: list[str] = []
    raws = [*segments[:-1], leaf_raw]
    for i, raw in enumerate(raws):
        if ":" in raw:
            raise _bad(url, "':' in a namespace" if i < len(raws) - 1 else "more than one ':' in the object name")
        try:
            seg = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            raise _bad(url, f"segment {raw!r} is not percent-encoded UTF-8") from None
        if seg in ("", ".", ".."):
            raise _bad(url, f"segment {raw!r} is empty, '.' or '..'")
        if "/" in seg or "\\" in seg:
            raise _bad(url, f"segment {raw!r} encodes a path separator")
        if _CONTROL_RE.search(seg) or _BIDI_RE.search(seg):
            raise _bad(url, f"segment {raw!r} encodes a control character")
        decoded.append(seg)
    name = decoded[-1]
    m = _LEAF_RE.fullmatch(name)
    md5, filename = (m.group("md5"), m.group("name")) if m else (None, name)
    # Hatrac keeps a name as it was sent (it accepts only unreserved characters and %XX), so a
    # segment already in that form is kept byte for byte; anything else is encoded canonically.
    path = (
        HATRAC_PREFIX
        + "/"
        + "/".join(
            raw if _SEGMENT_RE.fullmatch(raw) else quote(seg, safe="") for raw, seg in zip(raws, decoded, strict=True)
        )
    )
    return ObjectRef(path=path, version=version, table=decoded[0], name=name, md5=md5, filename=filename)


def origin_of(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an http(s) URL, the port defaulted (80/443), the host lower-cased."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"{url!r} is not an http(s) URL with a host")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValidationError(f"{url!r} has an invalid port") from exc
    return scheme, parts.hostname.lower(), port if port is not None else (443 if scheme == "https" else 80)


def resolve_object_url(url: object, server_url: str | None = None, *, allowed_origins: Iterable[str] = ()) -> ObjectRef:
    """The trust gate: parse a catalog-supplied object URL, refusing anything not on our server.

    A server-relative ``/hatrac/...`` path is accepted (see :func:`parse_object_url`). An absolute URL
    is accepted only when it has no user-info part and its scheme, host and port equal those of
    ``server_url`` or of one of ``allowed_origins`` (explicitly configured same-origin alternatives,
    e.g. ``"https://www.example.org"``); its path must then pass :func:`parse_object_url` and it may
    carry no query or fragment. Everything else (other hosts or schemes, ``//host/...``,
    ``user@host`` tricks, ``..`` and encoded slashes) raises :class:`UntrustedURL` before any
    request, so the credential never leaves for another host.
    """
    if not isinstance(url, str):
        raise _bad(url, "not a string")
    if url.startswith("/") and not url.startswith("//"):
        return parse_object_url(url)
    if url.startswith(("//", "\\\\")) or url.startswith("/\\"):
        raise _bad(url, "a scheme-relative URL names another host")
    if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", url):
        raise _bad(url, "neither a server-relative path nor an http(s) URL")
    if server_url is None:
        raise _bad(url, "absolute URLs are not accepted by a store without a server")
    if re.search(r"[\x00-\x20\x7f\\]", url):
        raise _bad(url, "it contains a space, backslash or control character")
    parts = urlsplit(url)
    if "@" in parts.netloc:
        raise _bad(url, "it carries a user-info part ('user@host')")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise _bad(url, "it carries a query or fragment")
    try:
        origin = origin_of(url)
        trusted = {origin_of(server_url), *(origin_of(o) for o in allowed_origins)}
    except ValidationError as exc:
        raise _bad(url, str(exc)) from None
    if origin not in trusted:
        raise _bad(url, f"{origin[0]}://{origin[1]}:{origin[2]} is not the configured server")
    try:
        return parse_object_url(parts.path)
    except UntrustedURL as exc:
        raise _bad(url, f"its path is not a Hatrac object path ({exc})") from None
