"""attrs field converters shared by frozen records across packages.

A converter is a named function so that mypy's attrs plugin reads its parameter type as the ``__init__``
parameter's (``converter=tuple`` would not type-check). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable


def str_tuple(values: Iterable[str]) -> tuple[str, ...]:
    """Any iterable of strings (a list, a generator, a tuple) as a tuple, order kept."""
    return tuple(values)


__all__ = ["str_tuple"]
