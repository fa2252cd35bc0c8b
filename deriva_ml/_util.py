"""Small helpers shared by the shell modules (no I/O)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

#: Values per filtered catalog request (keeps ERMrest URLs well under server limits).
CHUNK = 200


def chunks(items: Sequence[T], n: int = CHUNK) -> Iterator[list[T]]:
    """``items`` in consecutive lists of at most ``n``."""
    for i in range(0, len(items), n):
        yield list(items[i : i + n])


def safe_name(text: str) -> str:
    """``text`` usable as one file-name component: letters, digits, ``-``, ``.``, ``_``; others become ``_``."""
    return "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in text)
