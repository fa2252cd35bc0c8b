"""The runtime-environment snapshot uploaded (as Runtime_Env) when an execution initializes."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from deriva_ml.core.redact import redact_argv, redact_mapping, redact_urls, redaction_patterns


def _gpu_info(env: Mapping[str, str]) -> dict[str, Any]:
    info: dict[str, Any] = {"cuda_visible_devices": env.get("CUDA_VISIBLE_DEVICES")}
    nv = Path("/proc/driver/nvidia/gpus")
    try:
        info["nvidia_gpus"] = sorted(p.name for p in nv.iterdir()) if nv.is_dir() else []
    except OSError:
        info["nvidia_gpus"] = []
    torch = sys.modules.get("torch")  # only if the user's code already imported it; never import it here
    if torch is not None:
        try:
            info["torch_cuda_available"] = bool(torch.cuda.is_available())
            info["torch_cuda_device_count"] = int(torch.cuda.device_count())
        except Exception as exc:  # pragma: no cover - depends on the user's torch
            info["torch_error"] = repr(exc)
    info["available"] = bool(info["nvidia_gpus"]) or bool(info.get("torch_cuda_available"))
    return info


def _header_fields(text: str) -> tuple[str | None, str | None]:
    """``Name`` and ``Version`` from a core-metadata header, without the email parser (stops at the body)."""
    name = version = None
    for line in text.splitlines():
        if not line.strip():
            break  # end of the header block: the long description follows
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key == "name" and name is None:
            name = value.strip()
        elif key == "version" and version is None:
            version = value.strip()
        if name is not None and version is not None:
            break
    return name, version


def _name_version(dist: metadata.Distribution) -> tuple[str, str] | None:
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO")
    if text is not None:
        name, version = _header_fields(text)
        if name and version is not None:
            return name, version
    name = dist.metadata["Name"]  # unusual layouts: the full parse, as importlib.metadata does it
    return (name, dist.version) if name else None


@functools.cache
def installed_packages() -> tuple[tuple[str, str], ...]:
    """``(name, version)`` of every installed distribution, sorted by name, computed once per process.

    What is installed cannot change under a running interpreter in a way it would see (modules already
    imported stay imported), so every execution of the process records the same list. Only the
    ``Name``/``Version`` header lines are read, not the whole metadata through the email parser.
    """
    found = {nv for nv in map(_name_version, metadata.distributions()) if nv is not None}
    return tuple(sorted(found, key=lambda p: (p[0].lower(), p)))


def environment_snapshot(
    at: datetime, *, env: Mapping[str, str] | None = None, argv: Sequence[str] | None = None
) -> dict[str, Any]:
    """Python, packages, OS, GPU availability and environment variables (secrets redacted)."""
    env = dict(os.environ if env is None else env)
    packages = installed_packages()
    return {
        "captured_at": at.isoformat(),
        "python": {
            "version": sys.version,
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "os": {
            "system": platform.system(),
            "release": platform.release(),
            "version": platform.version(),
            "machine": platform.machine(),
            "platform": platform.platform(),
            "node": platform.node(),
        },
        "cpu_count": os.cpu_count(),
        "gpu": _gpu_info(env),
        "argv": redact_argv(list(sys.argv if argv is None else argv)),
        "cwd": os.getcwd(),
        "packages": [{"name": n, "version": v} for n, v in packages],
        "environment": dict(_redacted_environment(tuple(env.items()), redaction_patterns())),
    }


_LOCK_CACHE_SIZE = 8


@functools.lru_cache(maxsize=_LOCK_CACHE_SIZE)
def _redacted_environment(
    items: tuple[tuple[str, str], ...], _patterns: tuple[Any, ...]
) -> tuple[tuple[str, str], ...]:
    """The environment variables redacted and sorted: redacting them (a few hundred regular-expression
    searches) is done once per process while the variables and the redaction rules stay the same."""
    return tuple(sorted(redact_mapping(dict(items)).items()))


@functools.lru_cache(maxsize=_LOCK_CACHE_SIZE)
def _redacted_lock(path: str, _identity: tuple[int, int, int, int]) -> tuple[bytes, str]:
    data = redact_urls(Path(path).read_text(encoding="utf-8")).encode("utf-8")
    return data, hashlib.md5(data, usedforsecurity=False).hexdigest()


def redacted_lock_bytes(path: Path) -> tuple[bytes, str]:
    """The lock file at ``path`` with credentials in its URLs scrubbed (UTF-8), and the MD5 of those bytes.

    Scrubbing a large ``uv.lock`` costs tens of milliseconds; the result is reused while the file is the
    same one (device, inode, size and modification time unchanged), so a process running many executions
    pays it (and the hash) once and an edited lock file is read again.
    """
    st = path.stat()
    return _redacted_lock(str(path), (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))


def render_snapshot(snapshot: Mapping[str, Any]) -> str:
    """The snapshot as the text written to ``environment_snapshot_<timestamp>.txt``: exactly
    ``json.dumps(snapshot, indent=2, ensure_ascii=False)`` and a newline (keys in their order).

    An indented dump runs in pure Python; the package list and the environment (most of the text) are the
    same for every execution of a process, so each member is dumped compactly by the C encoder and its
    indented form is reused when that compact text was seen before.
    """
    if not snapshot:
        return "{}\n"
    members = [
        f"  {json.dumps(key, ensure_ascii=False)}: {_indented(json.dumps(value, ensure_ascii=False))}"
        for key, value in snapshot.items()
    ]
    return "{\n" + ",\n".join(members) + "\n}\n"


@functools.lru_cache(maxsize=32)
def _indented(compact: str) -> str:
    """A JSON value's compact text indented by 2 as a member of a top-level object (JSON strings hold no
    raw newline, so each of its lines after the first gets two more spaces)."""
    return json.dumps(json.loads(compact), indent=2, ensure_ascii=False).replace("\n", "\n  ")
