"""Secret redaction (pure): nothing secret reaches a log line, a file the library writes or the catalog.

One module, used for everything deriva_ml writes: metadata files (``configuration.json``, the runtime
environment snapshot, Hydra's ``config.yaml``/``overrides.yaml``/``hydra.yaml``), exception text written
to ``Status_Detail`` (and so to the journal and, by sync, to another server), log events, the manifest.
The rules (see ``docs/security.md``):

*Names.* A variable, mapping key, query parameter, option or override whose *name* looks secret has its
value replaced by :data:`REDACTED`: names containing token, secret, passw(or)d, passphrase, credential,
cookie, auth, session, private, signature, apikey/api_key/api-key, access_key, or whose last part is
``pass``, ``pwd``, ``pw``, ``key``, ``sig``, ``dsn`` (``DB_PASS``, ``MYSQL_PWD``, ``+db.password``,
``--api-key``, ``?sig=``). ``PATH``-like variables and ``PWD`` (the working directory) are not secret.

*Values* (whatever their name): URLs with a user-info part (``scheme://user:pw@host`` loses
``user:pw@``; a user part alone goes when it looks like a key, e.g. hex), ``user:pw@host`` without a
scheme, webhook URLs carrying their secret in the path (Slack, Discord, Teams, generic ``/hooks/``),
secret query values (``?access_token=``, ``?key=``, ``?sig=``, ``X-Amz-Signature=``...), bearer/basic
authorization values, JWTs, PEM private keys, well-known token prefixes (``ghp_``, ``sk-``, ``xoxb-``,
``AKIA``...) and long random-looking strings. Hex digests (MD5/SHA/git ids), RIDs, numbers and paths
are never redacted.

*argv*: ``--api-key X``, ``--api-key=X``, ``--pass X``, ``--password X``, ``-p X``,
``--header "Authorization: Bearer X"`` and Hydra overrides ``+db.password=X``.

More patterns: :func:`add_redaction_pattern` (a regex; what it matches is replaced, or its groups when it
has any), or the environment variable ``DERIVA_ML_REDACT_PATTERNS`` (one regex per line), read by the
library's shell code (``deriva_ml._log.load_redaction_env``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REDACTED = "<redacted>"

_SEP = r"(?:^|[_.\-])"
_END = r"(?:$|[_.\-])"
_SECRET_NAME = re.compile(
    r"(TOKEN|SECRET|PASSW(OR)?D|PASSPHRASE|CREDENTIAL|COOKIE|AUTH|SESSION|PRIVATE|SIGNATURE|"
    r"API[_.\-]?KEY|ACCESS[_.\-]?KEY|"
    rf"{_SEP}(PASS|PWD|PW|KEY|SIG|DSN|SAS){_END})",
    re.IGNORECASE,
)
_SECRET_PREFIXES = (
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "sk-",
    "sk_live_",
    "rk_live_",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xoxs-",
    "AKIA",
    "ASIA",
    "hf_",
    "npm_",
    "pypi-",
    "AIza",
)
_JWT = re.compile(r"^eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}$")
_BEARER = re.compile(r"^(bearer|basic|token|digest)\s+\S{8,}$", re.IGNORECASE)
_OPAQUE = re.compile(r"^[A-Za-z0-9+/=_\-]{32,}$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Names whose values are never secret even when long and random-looking.
_SAFE_NAMES = frozenset(
    {
        "PATH",
        "PYTHONPATH",
        "LS_COLORS",
        "MANPATH",
        "INFOPATH",
        "XDG_DATA_DIRS",
        "PWD",
        "OLDPWD",
        "XDG_SESSION_TYPE",
        "XDG_SESSION_ID",
        "XDG_SESSION_CLASS",
        "XDG_SESSION_DESKTOP",
        "SSH_AUTH_SOCK",
        "KEYMAP",
    }
)
#: Programs whose ``-p NAME VALUE`` passes a parameter (not a password): NAME kept, VALUE by its name.
_PARAMETER_PROGRAMS = frozenset({"papermill", "deriva-ml-run-notebook"})
#: Short options that take a password on the command line of common tools (mysql -p X, sshpass -p X).
_SECRET_SHORT_FLAGS = frozenset({"-p", "-P", "-k"})
_WEBHOOK_HOSTS = re.compile(
    r"(^|\.)(hooks\.slack\.com|discord(app)?\.com|outlook\.office(365)?\.com|hooks\.zapier\.com|"
    r"webhook\.office\.com|chat\.googleapis\.com|api\.telegram\.org|maker\.ifttt\.com)$",
    re.IGNORECASE,
)
_SAFE_USERS = frozenset({"git", "hg", "svn", "anonymous", "ftp", "root", "ubuntu", "ec2-user", "postgres", "admin"})

_extra: list[re.Pattern[str]] = []


def add_redaction_pattern(pattern: str | re.Pattern[str]) -> None:
    """Redact whatever ``pattern`` matches (only its groups, when it has any) in all text deriva_ml writes."""
    compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
    if all(p.pattern != compiled.pattern for p in _extra):
        _extra.append(compiled)


def clear_redaction_patterns() -> None:
    """Forget the patterns added with :func:`add_redaction_pattern`."""
    _extra.clear()


def redaction_patterns() -> tuple[re.Pattern[str], ...]:
    """The extra patterns in force."""
    return tuple(_extra)


def _entropy(s: str) -> float:
    counts: dict[str, int] = {}
    for ch in s:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


#: Parts of a name that say "token" in the machine-learning sense (a tokenizer, a count or id of tokens), not a
#: credential: ``tokenizer``, ``max_new_tokens``, ``num_tokens``, ``token_type_ids``. A name is judged on what is
#: left without them (``tokenizer_api_key`` is still secret).
_NOT_SECRET_PARTS = re.compile(
    r"TOKENI[SZ](?:ERS?|ATION)?|(?:(?:MAX|MIN|NUM|N|TOTAL|NEW|PROMPT|COMPLETION|INPUT|OUTPUT)[_.\-]?)+TOKENS?"
    r"|TOKENS?[_.\-]?(?:COUNTS?|LIMITS?|LEN(?:GTH)?S?|TYPE[_.\-]?IDS?|TYPES?|IDS?|PER[_.\-]?[A-Z]+)",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    """True when a variable (option, key, query parameter) called ``name`` probably holds a secret."""
    bare = name.strip().lstrip("-+~").strip()
    if not bare or bare.upper() in _SAFE_NAMES:
        return False
    return _SECRET_NAME.search(_NOT_SECRET_PARTS.sub(" ", bare)) is not None


def _random_looking(v: str) -> bool:
    if not _OPAQUE.match(v) or v.isdigit() or _HEX.match(v) or _UUID.match(v):
        return False  # hex digests (MD5/SHA, git ids) are provenance, not secrets
    if "/" in v and not re.search(r"[+=]", v):
        return False  # a path
    return _entropy(v) > 4.0 and bool(re.search(r"\d", v)) and bool(re.search(r"[A-Za-z]", v))


def looks_like_credential(value: str) -> bool:
    """True when ``value`` looks like a credential whatever its name."""
    v = value.strip()
    if not v:
        return False
    if "-----BEGIN" in v and "PRIVATE KEY" in v:
        return True
    if v.startswith(_SECRET_PREFIXES) and len(v) >= 12 and " " not in v:
        return True
    if _JWT.match(v) or _BEARER.match(v):
        return True
    if "://" in v:
        try:
            parts = urlsplit(v)
        except ValueError:
            return False
        return parts.password is not None
    return _random_looking(v)


def _secret_user(user: str) -> bool:
    if user.lower() in _SAFE_USERS:
        return False
    if len(user) >= 8 and _HEX.match(user):
        return True
    return len(user) >= 16 or looks_like_credential(user)


def scrub_url(value: str) -> str:
    """A URL without its secrets (password/user-info, secret query values, webhook path); other strings
    pass unchanged."""
    if "://" not in value:
        return value
    if "\\:" in value:  # Hydra's escaped form (postgresql\://ml\:pw@db/x): scrubbed unescaped, escaped again
        plain = value.replace("\\:", ":")
        clean = scrub_url(plain)
        return value if clean == plain else clean.replace(":", "\\:")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return redact_text(value)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _pw = userinfo.partition(":")
        if colon or _secret_user(user):
            netloc = hostport
    del port
    path = _scrub_webhook_path(parts.hostname or "", parts.path)
    query = _scrub_query(parts.query)
    return urlunsplit((parts.scheme, netloc, path, query, parts.fragment))


def _scrub_webhook_path(host: str, path: str) -> str:
    if _WEBHOOK_HOSTS.search(host):
        segs = path.split("/")
        for marker in ("services", "webhooks", "webhook", "webhookb2", "hooks", "trigger", "v1", "use"):
            if marker in segs:
                i = segs.index(marker)
                if len(segs) > i + 1:
                    return "/".join([*segs[: i + 1], REDACTED])
        if re.match(r"^/bot", path):
            return "/" + REDACTED
        return path
    segs = path.split("/")
    for marker in ("hooks", "webhooks", "webhook"):
        if marker in segs:
            i = segs.index(marker)
            if len(segs) > i + 1 and any(len(s) >= 16 for s in segs[i + 1 :]):
                return "/".join([*segs[: i + 1], REDACTED])
    return "/".join(REDACTED if _random_looking(s) or looks_like_credential(s) else s for s in segs)


_SECRET_QUERY = frozenset(
    {
        "key",
        "code",
        "sig",
        "signature",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "client_secret",
        "secret",
        "password",
        "pass",
        "pwd",
        "auth",
        "apikey",
        "api_key",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "x-goog-signature",
        "x-goog-credential",
        "sv",
        "se",
        "sp",
    }
)


def _scrub_query(query: str) -> str:
    if not query:
        return query
    out = []
    for part in query.split("&"):
        name, eq, value = part.partition("=")
        if eq and value and (name.lower() in _SECRET_QUERY or is_secret_name(name) or looks_like_credential(value)):
            out.append(f"{name}={REDACTED}")
        else:
            out.append(part)
    return "&".join(out)


# ------------------------------------------------------------------------------------------ free text

_URL_IN_TEXT = re.compile(r"""[A-Za-z][A-Za-z0-9+.\-]*://[^\s'"<>`\])},]+""")
#: a URL as Hydra writes an override value, its colons escaped (``postgresql\://ml\:pw@db/x``)
_ESCAPED_URL_IN_TEXT = re.compile(r"""[A-Za-z][A-Za-z0-9+.\-]*\\://[^\s'"<>`\])},]+""")
_USERPW_NO_SCHEME = re.compile(r"""(?<![\w/:.@])([\w.+%\-]+):([^\s@/:'"<>]+)@([\w\-]+(?:\.[\w\-]+)+)""")
_AUTH_HEADER = re.compile(
    r"""(\b(?:bearer|basic|token|digest)\s+)([A-Za-z0-9._~+/=\-]{8,})""",
    re.IGNORECASE,
)
_PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL)
_TOKEN_IN_TEXT = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_\-]{16,}|"
    r"sk-[A-Za-z0-9_\-]{16,}|sk_live_[A-Za-z0-9]{16,}|rk_live_[A-Za-z0-9]{16,}|xox[abps]-[A-Za-z0-9\-]{10,}|"
    r"(?:AKIA|ASIA)[0-9A-Z]{16}|hf_[A-Za-z0-9]{20,}|npm_[A-Za-z0-9]{20,}|pypi-[A-Za-z0-9_\-]{20,}|"
    r"AIza[0-9A-Za-z_\-]{30,}|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"
)
# name=value, name: value, "name": "value" (YAML, JSON, env dumps, Hydra overrides), --name value
_NAME = re.compile(r"[A-Za-z_][\w.\-]*")
_KV_TAIL = re.compile(r"""(['"]?)[ \t]*[:=][ \t]*(['"]?)(?P<value>[^\s'",;&)\]}]+)""")
_FLAG_TAIL = re.compile(r"""(?:['"],?)?[ \t]+['"]?(?P<value>[^\s'",\])]+)""")
_BARE_WORDS = frozenset({"key", "sig", "pass", "pw", "sas", "dsn", "pwd"})


def _redact_pairs(text: str) -> str:
    """Values of secret-named keys (``password: x``, ``+db.password=x``, ``"token": "x"``, ``--api-key x``)."""
    spans: list[tuple[int, int]] = []
    for m in _NAME.finditer(text):
        key = m.group(0)
        if not is_secret_name(key):
            continue
        start = m.start()
        flag = start >= 1 and text[start - 1] == "-" and (start < 2 or text[start - 2] in "- \t'\"[(,\n")
        tail = _KV_TAIL.match(text, m.end())
        if tail is None and flag:
            tail = _FLAG_TAIL.match(text, m.end())
        if tail is None:
            continue
        value = tail.group("value")
        if value.startswith(REDACTED):
            continue
        if key.lower() in _BARE_WORDS and not flag and ":" in text[m.end() : tail.start("value")]:
            # "primary key: RID" in prose is not a secret; "key: x" as a YAML line or "'key': x" in JSON is
            line_start = text.rfind("\n", 0, start) + 1
            if text[line_start:start].strip(" \t-{,'\"") != "":
                continue
        spans.append((tail.start("value"), tail.end("value")))
    for a, b in reversed(spans):
        text = text[:a] + REDACTED + text[b:]
    return text


_SHORT_FLAG = re.compile(r"""(?P<pre>(?:^|\s|['"\[(,])-[pP](?:['"],?)?\s+['"]?)(?P<value>[^\s'",\])]+)""")


def _url_sub(m: re.Match[str]) -> str:
    return scrub_url(m.group(0))


def _apply_extra(text: str, patterns: Sequence[re.Pattern[str]]) -> str:
    for p in patterns:
        text = p.sub(_redact_groups, text) if p.groups else p.sub(REDACTED, text)
    return text


def _redact_groups(m: re.Match[str]) -> str:
    s, base = m.group(0), m.start(0)
    for g in range(m.re.groups, 0, -1):
        if m.start(g) >= 0:
            s = s[: m.start(g) - base] + REDACTED + s[m.end(g) - base :]
    return s


def redact_text(text: str, extra: Sequence[re.Pattern[str]] | None = None) -> str:
    """``text`` (a message, a log line, a YAML/JSON file, a command line) with every secret replaced."""
    if not text:
        return text
    out = _PEM.sub(REDACTED, text)
    out = _URL_IN_TEXT.sub(_url_sub, out)
    if "\\:" in out:
        out = _ESCAPED_URL_IN_TEXT.sub(_url_sub, out)
    out = _USERPW_NO_SCHEME.sub(lambda m: f"{m.group(3)}", out)
    out = _AUTH_HEADER.sub(lambda m: m.group(1) + REDACTED, out)
    out = _TOKEN_IN_TEXT.sub(REDACTED, out)
    out = _redact_pairs(out)
    out = _SHORT_FLAG.sub(lambda m: m.group("pre") + REDACTED if m.group("value") != REDACTED else m.group(0), out)
    return _apply_extra(out, _extra if extra is None else extra)


#: File suffixes of configuration text: such files, passed as extra metadata files, are redacted when copied.
CONFIG_SUFFIXES = frozenset(
    {".yaml", ".yml", ".json", ".jsonl", ".toml", ".ini", ".cfg", ".conf", ".env", ".properties", ".txt", ".log"}
)


def is_config_text(name: str) -> bool:
    """Whether a file named ``name`` is configuration text the library redacts when it copies it
    (``.yaml``, ``.json``, ``.toml``, ``.ini``, ``.cfg``, ``.conf``, ``.env``, ``.properties``, ``.txt``,
    ``.log``, and dot-files such as ``.env``); other files are copied verbatim."""
    lower = name.lower()
    dot = lower.rfind(".")
    return dot >= 0 and lower[dot:] in CONFIG_SUFFIXES


def redact_description(text: str | None) -> str | None:
    """A user-written text bound for a catalog row (an execution, workflow, dataset, version, asset or term
    description) with the secrets :func:`redact_text` recognises replaced; ``None`` stays ``None``.

    Descriptions are prose the user chose to publish, so only recognisable secrets go: credentialed URLs
    and DSNs, tokens, authorization values, ``password: ...``-style pairs and the added patterns.
    """
    return None if text is None else redact_text(text)


def redact_urls(text: str) -> str:
    """``text`` with only its URLs scrubbed (for structured files such as ``uv.lock``, left otherwise intact)."""
    return _URL_IN_TEXT.sub(_url_sub, text) if "://" in text else text


def redact_value(name: str, value: str) -> str:
    """``value`` or :data:`REDACTED` for the variable ``name``."""
    if is_secret_name(name):
        return REDACTED
    scrubbed = scrub_url(value)
    if looks_like_credential(scrubbed):
        return REDACTED
    return redact_text(scrubbed)


def redact_mapping(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``env`` with every secret value replaced by :data:`REDACTED`."""
    return {k: redact_value(k, v) for k, v in env.items()}


def redact_jsonable(obj: Any, *, key: str | None = None) -> Any:
    """A copy of a JSON-like value (dicts, lists, strings...) with secret values replaced.

    Everything held under a secret name (``password``, ``api_token``...) is replaced, whatever its type: a
    string, a number (``db_password: 1234``), and every string and number inside a list or mapping there
    (``tokens: [...]``, ``secret: {"value": ...}``); ``true``/``false``, ``null`` and the keys of a mapping
    are kept. Elsewhere strings are scrubbed by the text rules (credentialed URLs, well-known tokens).
    """
    return _redact_json(obj, key, key is not None and is_secret_name(key))


def _redact_json(obj: Any, key: str | None, secret: bool) -> Any:
    if isinstance(obj, Mapping):
        return {k: _redact_json(v, str(k), secret or is_secret_name(str(k))) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        if secret:
            return [_redact_json(v, None, True) for v in obj]
        if obj and all(isinstance(x, str) for x in obj) and any(str(x).startswith("-") for x in obj):
            return redact_argv([str(x) for x in obj])
        return [_redact_json(v, None, False) for v in obj]
    if isinstance(obj, bool) or obj is None:
        return obj
    if secret:
        return REDACTED if obj != "" else obj
    if isinstance(obj, str):
        return redact_value(key, obj) if key is not None else _redact_item(obj)
    return obj


def _redact_item(value: str) -> str:
    scrubbed = scrub_url(value)
    return REDACTED if looks_like_credential(scrubbed) else redact_text(scrubbed)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """argv with secrets removed: values of ``--token x`` / ``--password=x`` / ``-p x`` style flags,
    ``--header "Authorization: Bearer x"``, Hydra overrides ``+db.password=x`` and credential-like items."""
    out: list[str] = []
    hide_next = False
    param_next = 0
    params = bool(argv) and re.split(r"[\\/]", str(argv[0]))[-1] in _PARAMETER_PROGRAMS
    for arg in argv:
        if param_next == 2:  # papermill-style "-p NAME VALUE": NAME is kept
            out.append(arg)
            param_next = 1
            hide_next = is_secret_name(arg)
            continue
        if param_next == 1:
            param_next = 0
            out.append(REDACTED if hide_next else _redact_item(arg))
            hide_next = False
            continue
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        if params and arg in ("-p", "--parameters"):
            out.append(arg)
            param_next = 2
            continue
        if arg.startswith("-") and "=" in arg:
            name, _, value = arg.partition("=")
            out.append(
                f"{name}={REDACTED}" if is_secret_name(name) or looks_like_credential(value) else redact_text(arg)
            )
            continue
        if arg.startswith("-") and (is_secret_name(arg) or arg in _SECRET_SHORT_FLAGS):
            out.append(arg)
            hide_next = True
            continue
        if "=" in arg and not arg.startswith("-") and re.match(r"^[+~]{0,2}[\w.\-/@]+=", arg):  # key=value
            name, _, value = arg.partition("=")
            out.append(
                f"{name}={REDACTED}"
                if is_secret_name(name.split("/")[-1]) or looks_like_credential(value)
                else f"{name}={_redact_item(value)}"
            )
            continue
        out.append(_redact_item(arg))
    return out
