"""attrs field converters shared by frozen records across packages.

A converter is a named function so that mypy's attrs plugin reads its parameter type as the ``__init__``
parameter's (``converter=tuple`` would not type-check). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def str_tuple(values: Iterable[str]) -> tuple[str, ...]:
    """Any iterable of strings (a list, a generator, a tuple) as a tuple, order kept."""
    return tuple(values)


def as_tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    """``value`` as a tuple, for a tuple field whose items are not strings (the field's annotation names the
    item type; a generic converter is not solved by the attrs plugin)."""
    return tuple(value)


__all__ = ["as_tuple", "str_tuple"]
