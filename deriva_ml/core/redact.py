"""Secret redaction (pure): nothing secret reaches a log line, a snapshot file or the catalog.

A variable is redacted when its *name* looks secret (token, secret, password, passwd, key, credential,
cookie, auth, session, private, signature) or its *value* looks like a credential (a bearer/basic
header, a URL with a password, a JWT, a PEM block, a long random-looking string, well-known token
prefixes such as ``ghp_``, ``sk-``, ``xox``, ``AKIA``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

REDACTED = "<redacted>"

_SECRET_NAME = re.compile(
    r"(TOKEN|SECRET|PASSW(OR)?D|PASSPHRASE|(^|_)KEY($|_)|APIKEY|API_KEY|ACCESS_KEY|CREDENTIAL|COOKIE|AUTH|"
    r"SESSION|PRIVATE|SIGNATURE|(^|_)PWD($|_))",
    re.IGNORECASE,
)
_SECRET_PREFIXES = (
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "github_pat_",
    "glpat-",
    "sk-",
    "xoxb-",
    "xoxp-",
    "AKIA",
    "ASIA",
    "hf_",
)
_JWT = re.compile(r"^eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}$")
_BEARER = re.compile(r"^(bearer|basic|token)\s+\S{8,}$", re.IGNORECASE)
_OPAQUE = re.compile(r"^[A-Za-z0-9+/=_\-]{32,}$")
# Names whose values are never secret even when long and random-looking.
_SAFE_NAMES = frozenset({"PATH", "PYTHONPATH", "LS_COLORS", "MANPATH", "INFOPATH", "XDG_DATA_DIRS", "PWD", "OLDPWD"})


def _entropy(s: str) -> float:
    counts: dict[str, int] = {}
    for ch in s:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def is_secret_name(name: str) -> bool:
    """True when a variable called ``name`` probably holds a secret."""
    return name.upper() not in _SAFE_NAMES and _SECRET_NAME.search(name) is not None


def looks_like_credential(value: str) -> bool:
    """True when ``value`` looks like a credential whatever its name."""
    v = value.strip()
    if not v:
        return False
    if "-----BEGIN" in v and "PRIVATE KEY" in v:
        return True
    if v.startswith(_SECRET_PREFIXES) and len(v) >= 12:
        return True
    if _JWT.match(v) or _BEARER.match(v):
        return True
    if "://" in v:
        try:
            parts = urlsplit(v)
        except ValueError:
            return False
        return parts.password is not None
    if _OPAQUE.match(v) and not v.isdigit() and not re.fullmatch(r"[0-9a-f]{32,64}", v):
        # a long token-like string; hex digests (MD5/SHA, git ids) are provenance, not secrets
        return _entropy(v) > 4.0
    return False


def scrub_url(value: str) -> str:
    """Remove a password (and token-like user) from a URL; other strings pass unchanged."""
    if "://" not in value:
        return value
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    if parts.password is None and not (parts.username and looks_like_credential(parts.username)):
        return value
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def redact_value(name: str, value: str) -> str:
    """``value`` or :data:`REDACTED` for the variable ``name``."""
    if is_secret_name(name):
        return REDACTED
    scrubbed = scrub_url(value)
    return REDACTED if looks_like_credential(scrubbed) else scrubbed


def redact_mapping(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``env`` with every secret value replaced by :data:`REDACTED`."""
    return {k: redact_value(k, v) for k, v in env.items()}


def redact_argv(argv: Sequence[str]) -> list[str]:
    """argv with secrets removed: values of ``--token x`` / ``--password=x`` style flags and credential-like items."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        if arg.startswith("-") and "=" in arg:
            name, _, value = arg.partition("=")
            out.append(
                f"{name}={REDACTED}" if is_secret_name(name.lstrip("-")) or looks_like_credential(value) else arg
            )
            continue
        if arg.startswith("-") and is_secret_name(arg.lstrip("-")):
            out.append(arg)
            hide_next = True
            continue
        if "=" in arg and not arg.startswith("-"):  # hydra override key=value
            name, _, value = arg.partition("=")
            out.append(f"{name}={REDACTED}" if is_secret_name(name) or looks_like_credential(value) else arg)
            continue
        scrubbed = scrub_url(arg)
        out.append(REDACTED if looks_like_credential(scrubbed) else scrubbed)
    return out
