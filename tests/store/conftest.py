"""Fixtures for the object-store tests; ``hatrac_server`` is reusable by other test packages.

Other test folders can use the protocol server by importing it from ``tests/store/hatrac_server.py``
(e.g. add ``tests/store`` to ``sys.path`` in their conftest, or copy this fixture).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hatrac_server import HatracTestServer, SleepRecorder


@pytest.fixture
def hatrac_server() -> Iterator[HatracTestServer]:
    """A started in-memory Hatrac protocol server on 127.0.0.1 (stopped afterwards)."""
    with HatracTestServer() as server:
        yield server


@pytest.fixture
def sleeps() -> SleepRecorder:
    """Records back-off delays instead of sleeping."""
    return SleepRecorder()
