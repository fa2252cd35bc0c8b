"""Deterministic fault injection for the crash tests of :mod:`deriva_ml.sync` (a no-op unless the env is set).

``DERIVA_ML_SYNC_KILL_AT=<step>:<n>`` makes the process SIGKILL itself the n-th time it reaches ``step``:
``object_put`` / ``object`` (an object stored / copied), ``ddl`` (tables created, progress not saved),
``inflight`` (group marked in flight, nothing written), ``write`` (group written, progress not saved),
``saved`` (progress saved).
"""

from __future__ import annotations

import os
import signal

_KILL_ENV = "DERIVA_ML_SYNC_KILL_AT"
_kill_counts: dict[str, int] = {}


def _step(name: str) -> None:
    """Deterministic fault injection for tests: SIGKILL this process at the n-th arrival at ``name``."""
    spec = os.environ.get(_KILL_ENV)
    if not spec:
        return
    step, _, n = spec.partition(":")
    if step != name:
        return
    _kill_counts[name] = _kill_counts.get(name, 0) + 1
    if _kill_counts[name] == int(n or 1):
        os.kill(os.getpid(), signal.SIGKILL)
