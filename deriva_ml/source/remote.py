"""Git remotes: parsing any common remote form, the browsable URL of a file at a commit on the usual
forges, ``file://`` URLs, and dropping credentials from a URL before it is logged or recorded. Pure."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from urllib.parse import quote, urlsplit

import attrs


@attrs.frozen
class RemoteLocation:
    """A parsed git remote: host (no credentials, no ssh port) and repository path (no ``.git``)."""

    scheme: str  # "https" or "http" (ssh/git remotes map to https)
    host: str  # may carry a port for http(s) remotes
    path: str  # "ORG/REPO" or "GROUP/SUB/REPO"


_SCP_RE = re.compile(r"^(?:(?P<user>[^@/]+)@)?(?P<host>[^:/]+):(?P<path>.+)$")


def parse_remote(remote_url: str) -> RemoteLocation | None:
    """Parse any common git remote form; None for local paths and unparseable values.

    Credentials (``user:token@``) are dropped, the ``.git`` suffix and trailing slashes are removed,
    the port of an ssh remote is dropped (it is not the web port), an http(s) port is kept.
    """
    url = remote_url.strip()
    if not url:
        return None
    if "://" in url:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme in ("file", ""):
            return None
        host = (parts.hostname or "").lower()
        if not host:
            return None
        web_scheme = scheme if scheme in ("http", "https") else "https"
        if web_scheme in ("http", "https"):
            try:
                port = parts.port
            except ValueError:
                port = None
            if port and scheme in ("http", "https") and port not in (80, 443):
                host = f"{host}:{port}"
        path = parts.path
    else:
        m = _SCP_RE.match(url)
        # scp-like syntax needs the colon before any slash, and is not a Windows drive ("C:\...").
        if not m or len(m.group("host")) == 1:
            return None
        host = m.group("host").lower()
        path = m.group("path")
        web_scheme = "https"
    path = path.strip("/")
    path = path.removesuffix(".git").strip("/")
    if path.startswith("~"):  # ssh://host/~user/repo -> user/repo
        path = path[1:]
    if not path:
        return None
    return RemoteLocation(scheme=web_scheme, host=host, path=path)


def _host_kind(host: str) -> str:
    name = host.split(":", 1)[0]
    if name in ("github.com", "www.github.com") or name.endswith(".github.com"):
        return "github"
    if name == "bitbucket.org" or name.startswith("bitbucket."):
        return "bitbucket"
    if name == "gitlab.com" or name.startswith("gitlab.") or ".gitlab." in name:
        return "gitlab"
    if name == "codeberg.org" or name.startswith(("gitea.", "forgejo.")):
        return "gitea"
    return "other"


def browse_url(remote_url: str, sha: str, rel_path: str) -> str | None:
    """Browsable URL of ``rel_path`` at commit ``sha`` in the repository behind ``remote_url``.

    GitHub: ``https://github.com/ORG/REPO/blob/SHA/PATH``; GitLab (also subgroups and self-hosted
    ``gitlab.*``): ``.../-/blob/SHA/PATH``; Bitbucket: ``.../src/SHA/PATH``; Gitea/Forgejo/Codeberg:
    ``.../src/commit/SHA/PATH``; any other host: the GitHub form on https (what most forges and
    GitHub Enterprise accept). None when the remote is a local path.
    """
    loc = parse_remote(remote_url)
    if loc is None:
        return None
    base = f"{loc.scheme}://{loc.host}/{loc.path}"
    path = quote(rel_path.lstrip("/"), safe="/")
    kind = _host_kind(loc.host)
    if kind == "gitlab":
        return f"{base}/-/blob/{sha}/{path}"
    if kind == "bitbucket":
        return f"{base}/src/{sha}/{path}"
    if kind == "gitea":
        return f"{base}/src/commit/{sha}/{path}"
    return f"{base}/blob/{sha}/{path}"


def file_url(path: str) -> str:
    """``file://`` URL of an absolute POSIX path (percent-encoded)."""
    posix = PurePosixPath(path.replace("\\", "/"))
    text = posix.as_posix()
    if not text.startswith("/"):
        text = "/" + text
    return "file://" + quote(text, safe="/:")


def redact_url(url: str) -> str:
    """Drop ``user:password@`` from a URL so it can be logged or recorded."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=netloc).geturl()


__all__ = ["RemoteLocation", "browse_url", "file_url", "parse_remote", "redact_url"]
