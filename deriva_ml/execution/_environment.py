"""The runtime-environment snapshot uploaded (as Runtime_Env) when an execution initializes."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from deriva_ml.core.redact import redact_argv, redact_mapping


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


def environment_snapshot(
    at: datetime, *, env: Mapping[str, str] | None = None, argv: Sequence[str] | None = None
) -> dict[str, Any]:
    """Python, packages, OS, GPU availability and environment variables (secrets redacted)."""
    env = dict(os.environ if env is None else env)
    packages = sorted(
        {(d.metadata["Name"] or "?", d.version) for d in metadata.distributions() if d.metadata["Name"]},
        key=lambda p: p[0].lower(),
    )
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
        "environment": dict(sorted(redact_mapping(env).items())),
    }


def render_snapshot(snapshot: Mapping[str, Any]) -> str:
    """The snapshot as the text written to ``environment_snapshot_<timestamp>.txt`` (JSON, stable order)."""
    return json.dumps(snapshot, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
