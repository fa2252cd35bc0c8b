"""The optional libraries of the exports (the ``export`` extra), imported on first use."""

from __future__ import annotations

import importlib
from typing import Any

from deriva_ml.core.errors import ConfigurationError


def require(what: str, module: str, name: str) -> Any:
    """``module.name``, or ConfigurationError saying which extra provides it."""
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ConfigurationError(
            f"{what} needs the '{module.split('.')[0]}' package: install deriva-ml with the 'export' extra "
            "(pip install 'deriva-ml[export]')"
        ) from exc
