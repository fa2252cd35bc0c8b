"""The attrs converter that freezes a sequence field of a record into a tuple.

``converter=tuple`` makes mypy's attrs plugin type the ``__init__`` argument ``Iterable[_T_co]``, and a
generic converter is not solved by it either: :func:`as_tuple` takes any iterable and gives a tuple (the
field's annotation names the item type).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def as_tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    """``value`` as a tuple (the converter of tuple-valued fields of frozen records)."""
    return tuple(value)
