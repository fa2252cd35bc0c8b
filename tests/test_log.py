"""Every logging call of deriva_ml's logger reaches the underlying structlog logger at its level, redacted."""

from __future__ import annotations

from typing import Any

import pytest

from deriva_ml._log import _RedactingLogger

LEVELS = [
    ("debug", "debug"),
    ("info", "info"),
    ("warning", "warning"),
    ("warn", "warning"),
    ("error", "error"),
    ("critical", "critical"),
    ("exception", "error"),  # with exc_info
]


class Recorder:
    """A structlog-shaped logger that keeps each call (method, event, keywords)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []

    def __getattr__(self, method: str) -> Any:
        return lambda event, **kw: self.calls.append((method, event, kw))


@pytest.mark.parametrize(("call", "level"), LEVELS)
def test_each_level_logs_redacted_and_formatted_at_its_level(call: str, level: str) -> None:
    inner = Recorder()
    try:
        raise RuntimeError("boom --token Exc5ecret")
    except RuntimeError:
        getattr(_RedactingLogger(inner), call)(
            "step %s of %d for --password Ev5ecret", "load", 2, password="Pw5ecret", n=1
        )
    ((method, event, kw),) = inner.calls
    assert method == level
    assert event.startswith("step load of 2 for --password ") and "Ev5ecret" not in event
    assert kw.pop("password") != "Pw5ecret"
    trace = kw.pop("exception", "")  # only exception() attaches the (redacted) traceback
    assert ("RuntimeError: boom" in trace) == (call == "exception") and "Exc5ecret" not in trace
    assert kw == {"n": 1}
    assert getattr(_RedactingLogger, call).__name__ == ("warning" if call == "warn" else call)
