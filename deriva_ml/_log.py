"""Logging for deriva_ml: structlog loggers that behave like a library's.

deriva_ml never configures logging for the application. When the application has configured structlog,
our loggers are ordinary structlog loggers and follow that configuration (``structlog.testing.capture_logs``
included). When it has not, events go to the standard-library logger of the same name (``deriva_ml...``),
so they are silent below WARNING until the application enables them (``logging.basicConfig(level=...)``).
"""

from __future__ import annotations

import logging
from typing import Any

import structlog


def get_logger(name: str = "deriva_ml", **initial: Any) -> Any:
    """A structlog logger for ``name`` bound with ``initial`` values (call it where you log, not at import)."""
    if structlog.is_configured():
        return structlog.get_logger(name, **initial)
    stdlib = logging.getLogger(name)
    return structlog.wrap_logger(
        stdlib,
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_log_level,
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(key_order=["event"], drop_missing=True),
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
        **initial,
    )
