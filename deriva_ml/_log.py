"""Logging for deriva_ml: structlog loggers that behave like a library's.

deriva_ml never configures logging for the application. When the application has configured structlog,
our loggers are ordinary structlog loggers and follow that configuration (``structlog.testing.capture_logs``
included). When it has not, events go to the standard-library logger of the same name (``deriva_ml...``),
so they are silent below WARNING until the application enables them (``logging.basicConfig(level=...)``).

Every event is redacted before it leaves (``deriva_ml.core.redact``) whatever the application's
configuration: the event text, every bound and call value, and the formatted exception. An application
can add :func:`redact_processor` to its own structlog chain to redact other loggers' events the same way.
"""

from __future__ import annotations

import logging
import os
import re
import traceback
from collections.abc import Callable, MutableMapping
from typing import Any

from deriva_ml.core.redact import REDACTED, add_redaction_pattern, is_secret_name, redact_jsonable, redact_text

#: Environment variable holding extra redaction patterns (Python regexes, one per line).
REDACT_ENV = "DERIVA_ML_REDACT_PATTERNS"
_loaded_env: str | None = None


def load_redaction_env(env: MutableMapping[str, str] | None = None) -> None:
    """Add the patterns of ``$DERIVA_ML_REDACT_PATTERNS`` (one regex per line) to the redaction rules."""
    global _loaded_env
    text = (os.environ if env is None else env).get(REDACT_ENV, "")
    if text == _loaded_env:
        return
    from deriva_ml.core.errors import ConfigurationError

    for line in text.splitlines():
        if line.strip():
            try:
                add_redaction_pattern(re.compile(line.strip()))
            except re.error as exc:
                raise ConfigurationError(
                    f"{REDACT_ENV}: {line.strip()!r} is not a valid regular expression: {exc}"
                ) from exc
    _loaded_env = text


def redact_event(event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """An event dict with secrets removed from every value (the exception rendered and redacted)."""
    exc_info = event_dict.pop("exc_info", None)
    if exc_info:
        if exc_info is True:
            import sys

            exc_info = sys.exc_info()
        elif isinstance(exc_info, BaseException):
            exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        if exc_info and exc_info[0] is not None:
            event_dict["exception"] = "".join(traceback.format_exception(*exc_info))
    for k, v in list(event_dict.items()):
        if k != "event" and v is not None and is_secret_name(k) and not isinstance(v, bool):
            event_dict[k] = REDACTED
        elif isinstance(v, str):
            event_dict[k] = redact_text(v)
        elif isinstance(v, dict | list | tuple):
            event_dict[k] = redact_jsonable(v, key=k)
        elif v is not None and not isinstance(v, int | float | bool):
            event_dict[k] = redact_text(str(v))
    return event_dict


def redact_processor(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor applying deriva_ml's redaction rules (for an application's own chain)."""
    return redact_event(event_dict)


def _level(method: str) -> Callable[..., Any]:
    """The logging call ``method`` of :class:`_RedactingLogger` (``log.info("event %s", arg, key=value)``)."""

    def call(self: _RedactingLogger, event: Any = None, *args: Any, **kw: Any) -> Any:
        return self._call(method, event, *args, **kw)

    call.__name__ = call.__qualname__ = method
    return call


#: The standard-library level of each logging call (``exception`` logs at ERROR).
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "exception": logging.ERROR,
}


class _RedactingLogger:
    """A structlog logger whose every call is redacted before the configured processors see it.

    ``stdlib``: the standard-library logger events go to when deriva_ml built the processor chain itself
    (its first processor is ``filter_by_level``): an event that logger would drop is dropped here, before
    it is formatted or redacted (most of an execution's events are below the default WARNING). With an
    application's own structlog configuration (``stdlib`` None) every event goes through, as it decides.
    """

    __slots__ = ("_inner", "_stdlib")

    def __init__(self, inner: Any, stdlib: logging.Logger | None = None) -> None:
        self._inner = inner
        self._stdlib = stdlib

    def bind(self, **kw: Any) -> _RedactingLogger:
        return _RedactingLogger(self._inner.bind(**redact_event(dict(kw))), self._stdlib)

    def new(self, **kw: Any) -> _RedactingLogger:
        return _RedactingLogger(self._inner.new(**redact_event(dict(kw))), self._stdlib)

    def unbind(self, *keys: str) -> _RedactingLogger:
        return _RedactingLogger(self._inner.unbind(*keys), self._stdlib)

    def _call(self, method: str, event: Any = None, *args: Any, **kw: Any) -> Any:
        if self._stdlib is not None and not self._stdlib.isEnabledFor(_LEVELS[method]):
            return None  # what filter_by_level would do, without formatting and redacting the event first
        if method == "exception":
            kw.setdefault("exc_info", True)
            method = "error"
        if args and isinstance(event, str):
            try:
                event = event % args
            except (TypeError, ValueError):
                event = " ".join([event, *map(str, args)])
        data = redact_event({"event": event, **kw})
        event = data.pop("event")
        return getattr(self._inner, method)(event, **data)

    debug = _level("debug")
    info = _level("info")
    warning = warn = _level("warning")
    error = _level("error")
    critical = _level("critical")
    exception = _level("exception")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def get_logger(name: str = "deriva_ml", **initial: Any) -> Any:
    """A structlog logger for ``name`` bound with ``initial`` values (call it where you log, not at import)."""
    import structlog  # on first use: structlog (and the rich it may bring) is not part of ``import deriva_ml``

    load_redaction_env()
    initial = dict(redact_event(dict(initial)))
    if structlog.is_configured():
        return _RedactingLogger(structlog.get_logger(name, **initial))
    stdlib = logging.getLogger(name)
    return _RedactingLogger(
        structlog.wrap_logger(
            stdlib,
            processors=[
                structlog.stdlib.filter_by_level,
                structlog.stdlib.add_log_level,
                structlog.processors.format_exc_info,
                structlog.processors.KeyValueRenderer(key_order=["event"], drop_missing=True),
            ],
            wrapper_class=structlog.stdlib.BoundLogger,
            **initial,
        ),
        stdlib,
    )
