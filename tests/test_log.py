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


class _Loud:
    """A value that counts how often it is turned into text (what formatting or redacting an event does)."""

    def __init__(self) -> None:
        self.rendered = 0

    def __str__(self) -> str:
        self.rendered += 1
        return "loud"


@pytest.mark.parametrize(("call", "level"), LEVELS)
def test_an_event_below_the_stdlib_level_is_dropped_before_it_is_redacted(call: str, level: str) -> None:
    import logging

    from deriva_ml._log import get_logger

    std = logging.getLogger("deriva_ml.test_log_levels")
    inner = Recorder()
    # the chain deriva_ml builds itself: events the standard-library logger would drop are dropped first
    for threshold in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL):
        std.setLevel(threshold)
        loud = _Loud()
        getattr(_RedactingLogger(inner, std), call)("event", value=loud)
        emitted = logging.getLevelName(level.upper()) >= threshold
        assert loud.rendered == (1 if emitted else 0)
    # get_logger without an application structlog configuration builds that chain (level from stdlib)
    import structlog

    std.setLevel(logging.ERROR)
    was = structlog.get_config() if structlog.is_configured() else None  # capture_logs elsewhere configures
    structlog.reset_defaults()
    try:
        loud = _Loud()
        get_logger("deriva_ml.test_log_levels").info("dropped", value=loud)
        assert loud.rendered == 0
    finally:
        if was is not None:
            structlog.configure(**was)
    # an application's own configuration (no stdlib logger known) sees every event, redacted
    loud = _Loud()
    getattr(_RedactingLogger(inner), call)("event", value=loud)
    assert loud.rendered == 1
