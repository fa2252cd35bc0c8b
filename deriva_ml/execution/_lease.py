"""An execution's lease: the process holding it (host, pid, start time) recorded in its manifest.

The liveness check is the package's one (:mod:`deriva_ml._process`); ``abort_stale_executions`` reads the
lease to tell a dead run from a live one.
"""

from __future__ import annotations

import json
import os
from typing import Any

from deriva_ml._process import owner_identity as owner_identity
from deriva_ml._process import owner_is_alive as owner_is_alive
from deriva_ml._process import process_start_time as process_start_time

#: Manifest state holding the lease.
LEASE = "owner"


_IDENTITY: dict[int, str] = {}


def lease_text() -> str:
    """The lease value naming the current process (read from ``/proc`` once per process id: a forked
    child has its own pid, so it gets its own identity)."""
    pid = os.getpid()
    text = _IDENTITY.get(pid)
    if text is None:
        text = _IDENTITY[pid] = json.dumps(owner_identity())
    return text


def hold_lease(manifest: Any) -> None:
    """Record the current process as the holder of the execution whose manifest this is."""
    manifest.set_state(LEASE, lease_text())


__all__ = ["LEASE", "hold_lease", "lease_text", "owner_identity", "owner_is_alive", "process_start_time"]
