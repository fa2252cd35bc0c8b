"""Helpers shared by the data tests (a module of its own: ``conftest`` names clash across test directories)."""

from __future__ import annotations

from typing import Any


def remote(ml: Any) -> bool:
    """Whether ``ml`` talks HTTP (the ERMrest fake or a live server), so that requests can be counted."""
    return ml.backend != "embedded"
