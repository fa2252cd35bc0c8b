"""Small helpers shared by the shell modules (no I/O)."""

from __future__ import annotations


def safe_name(text: str) -> str:
    """``text`` usable as one file-name component: letters, digits, ``-``, ``.``, ``_``; others become ``_``."""
    return "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in text)
