"""Process identity: the one liveness check of the package (execution leases and asset-cache locks).

A holder is named by ``{"host", "pid", "started"}``: the host name, the process id and the process's
start time (Linux ``/proc/<pid>/stat`` field 22). The start time tells a live holder from an unrelated
process that was given the same pid later (pid reuse): such a holder is dead.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["owner_identity", "owner_is_alive", "process_start_time"]


def process_start_time(pid: int) -> str | None:
    """An identifier of when process ``pid`` started (Linux ``/proc``), or None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    # field 22 (starttime) counted after the parenthesised command name
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def owner_identity() -> dict[str, Any]:
    """host, pid and process start time of the current process (an execution's lease, a lock's holder)."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "started": process_start_time(pid)}


def owner_is_alive(owner: Mapping[str, Any]) -> bool | None:
    """True/False when ``owner`` ran on this host and is/isn't still running; None when it can't be told.

    A holder naming a pid that now belongs to a process started at another time (pid reuse) is dead;
    so is a holder whose pid is not a positive integer (garbage).
    """
    if owner.get("host") != socket.gethostname():
        return None
    pid = owner.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    started = process_start_time(pid)
    if started is None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        except OSError:  # pragma: no cover - platforms without signal 0
            return None
        return owner.get("started") is None
    return owner.get("started") in (None, started)
