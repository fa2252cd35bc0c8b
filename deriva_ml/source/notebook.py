"""Jupyter notebooks: find the running notebook's path, and its nbstripout-normalised checksum.

Everything Jupyter-related is imported lazily, only when code runs inside a kernel (or when a
notebook is hashed), so ``import deriva_ml`` stays light and works without the ``notebook`` extra.

Finding the notebook: the kernel id comes from the kernel's connection file
(``ipykernel.get_connection_file()``, ``kernel-<id>.json``); every running Jupyter server
(``jupyter_server.serverapp.list_running_servers()``) is asked ``GET {url}api/sessions`` and the
session whose kernel has that id names the notebook (relative to the server's ``root_dir``). If no
server answers, ``JPY_SESSION_NAME`` (set by jupyter_server >= 2 in the kernel's environment) is used.

Checksum: the git blob id of what ``nbstripout -t NOTEBOOK`` prints, i.e. the notebook read with
``nbformat`` (``NO_CONVERT``), passed through ``nbstripout.strip_output`` with nbstripout's default
extra keys plus ``filter.nbstripout.extrakeys`` minus ``filter.nbstripout.keepmetadatakeys`` from
the repository's git config (read through dulwich), and written back with ``nbformat.write`` and
``\\n`` newlines.
"""

from __future__ import annotations

import io
import json
import os
import sys
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from deriva_ml._log import get_logger as _get_logger
from deriva_ml.source.git import blob_id_of_bytes

#: nbstripout's built-in extra keys (what ``nbstripout`` strips besides outputs and counts).
NBSTRIPOUT_EXTRA_KEYS: tuple[str, ...] = (
    "metadata.signature",
    "metadata.widgets",
    "cell.metadata.collapsed",
    "cell.metadata.ExecuteTime",
    "cell.metadata.execution",
    "cell.metadata.heading_collapsed",
    "cell.metadata.hidden",
    "cell.metadata.scrolled",
)

__all__ = [
    "NBSTRIPOUT_EXTRA_KEYS",
    "SESSIONS_TIMEOUT",
    "find_notebook_path",
    "in_jupyter_kernel",
    "kernel_id",
    "nbstripout_config",
    "notebook_blob_id",
    "stripped_notebook",
]


def in_jupyter_kernel() -> bool:
    """True inside an IPython kernel (a Jupyter notebook, lab or console), never imports IPython."""
    if "ipykernel" not in sys.modules:
        return False
    ipython_mod = sys.modules.get("IPython")
    get_ipython = getattr(ipython_mod, "get_ipython", None)
    if get_ipython is None:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def kernel_id() -> str | None:
    """The running kernel's id (from its connection file name ``kernel-<id>.json``)."""
    try:
        import ipykernel

        connection_file = ipykernel.get_connection_file()
    except Exception:  # not in a kernel, or no connection file
        return None
    name = Path(connection_file).name
    if name.startswith("kernel-") and name.endswith(".json"):
        return name[len("kernel-") : -len(".json")]
    return None


#: Seconds a Jupyter server may take to list its sessions (a busy machine, a server with many kernels).
SESSIONS_TIMEOUT = 10.0


def _sessions(server: Mapping[str, Any], timeout: float) -> list[dict[str, Any]]:
    import requests

    url = str(server.get("url", ""))
    if not url:
        return []
    if not url.endswith("/"):
        url += "/"
    token = server.get("token") or ""
    with requests.Session() as session:
        session.trust_env = False  # loopback: no proxies, no .netrc
        headers = {"Authorization": f"token {token}"} if token else {}
        resp = session.get(f"{url}api/sessions", headers=headers, timeout=timeout)
        resp.raise_for_status()
        data = resp.json()
    return data if isinstance(data, list) else []


def find_notebook_path(
    kernel: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    servers: Iterable[Mapping[str, Any]] | None = None,
    timeout: float = SESSIONS_TIMEOUT,
) -> Path | None:
    """Absolute path of the notebook whose kernel is ``kernel`` (default: this kernel).

    ``timeout`` bounds each server's answer (:data:`SESSIONS_TIMEOUT`): a server that is gone refuses the
    connection at once, so the bound only matters for a live server, which may be slow on a busy machine.

    ``servers`` defaults to ``jupyter_server.serverapp.list_running_servers()``; ``env`` (default
    ``os.environ``) is consulted for ``JPY_SESSION_NAME`` when no server knows the kernel.
    Returns None outside a kernel or when the notebook cannot be found; never raises."""

    log = _get_logger(__name__)
    kid = kernel or kernel_id()
    if kid is None:
        return None
    if servers is None:
        try:
            from jupyter_server.serverapp import list_running_servers

            servers = list(list_running_servers())
        except Exception as exc:  # jupyter_server missing or runtime dir unreadable
            log.debug("jupyter servers unavailable", error=str(exc))
            servers = []
    for server in servers:
        try:
            sessions = _sessions(server, timeout)
        except Exception as exc:  # a stale server file, a server that went away
            log.debug("jupyter server did not answer", url=server.get("url"), error=str(exc))
            continue
        for s in sessions:
            if (s.get("kernel") or {}).get("id") != kid:
                continue
            rel = s.get("path") or (s.get("notebook") or {}).get("path")
            if not rel:
                continue
            root = server.get("root_dir") or server.get("notebook_dir") or ""
            path = Path(rel) if os.path.isabs(rel) else Path(root).expanduser() / rel
            return path.resolve()
    env = os.environ if env is None else env
    name = env.get("JPY_SESSION_NAME")
    if name and name.endswith(".ipynb"):
        p = Path(name)
        if not p.is_absolute():
            p = Path.cwd() / p
        if p.exists():
            return p.resolve()
    return None


def nbstripout_config(repo_root: str | os.PathLike[str] | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(extra keys, keep-metadata keys) from ``filter.nbstripout.extrakeys`` /
    ``filter.nbstripout.keepmetadatakeys`` in the repository's git config stack (dulwich)."""
    if repo_root is None:
        return (), ()
    from dulwich.repo import Repo

    extra: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()
    try:
        with Repo(os.fspath(repo_root)) as repo:
            config = repo.get_config_stack()
            for key, target in ((b"extrakeys", "extra"), (b"keepmetadatakeys", "keep")):
                try:
                    value = config.get((b"filter", b"nbstripout"), key).decode("utf-8", "replace")
                except KeyError:
                    continue
                if target == "extra":
                    extra = tuple(value.split())
                else:
                    keep = tuple(value.split())
    except Exception:  # not a repository: nothing configured
        return (), ()
    return extra, keep


def stripped_notebook(
    path: str | os.PathLike[str],
    *,
    extra_keys: Iterable[str] = (),
    keep_metadata_keys: Iterable[str] = (),
) -> bytes:
    """The bytes ``nbstripout -t PATH`` prints (default options)."""
    import nbformat
    from nbstripout import strip_output

    keep = set(keep_metadata_keys)
    keys = [k for k in (*NBSTRIPOUT_EXTRA_KEYS, *extra_keys) if k not in keep]
    with open(path, encoding="utf-8") as f, warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        nb = nbformat.read(f, as_version=nbformat.NO_CONVERT)  # type: ignore[no-untyped-call]
    stripped = strip_output(
        nb,
        keep_output=None,
        keep_count=False,
        keep_id=False,
        extra_keys=keys,
        drop_empty_cells=False,
        drop_tagged_cells=[],
        strip_init_cells=False,
        drop_output_types=set(),
        keep_output_types=set(),
        max_size=0,
    )
    out = io.StringIO(newline="\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        nbformat.write(stripped, out)  # type: ignore[no-untyped-call]
    return out.getvalue().encode("utf-8")


def notebook_blob_id(path: str | os.PathLike[str], repo_root: str | os.PathLike[str] | None = None) -> str:
    """Git blob id of the nbstripout-normalised notebook (``nbstripout -t NB | git hash-object
    --stdin``), honouring the repository's nbstripout key configuration when ``repo_root`` is given.
    A file that is not valid notebook JSON is hashed as it is."""
    extra, keep = nbstripout_config(repo_root)
    try:
        data = stripped_notebook(path, extra_keys=extra, keep_metadata_keys=keep)
    except (json.JSONDecodeError, ValueError, KeyError, AttributeError):
        data = Path(path).read_bytes()
    return blob_id_of_bytes(data)
