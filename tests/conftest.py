"""Suite-wide test configuration.

``slow``: tests that spawn Jupyter kernels, Hydra multiruns, CLI subprocesses or SIGKILLed processes. The fast
inner loop is ``uv run pytest -m "not slow"``; CI runs everything. A test is slow either by its own
``@pytest.mark.slow`` or because its whole module is listed here (modules whose every test spawns processes).
"""

from __future__ import annotations

from pathlib import Path

import pytest

_SLOW_MODULES = {
    "runner/test_notebook_runner.py",  # a kernel per test
    "runner/test_runner_cli.py",  # deriva-ml-run subprocesses, multiruns
    "execution/test_crash.py",  # SIGKILLed subprocesses
    "test_cli.py",  # the deriva-ml entry point in subprocesses
}
_TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            rel = Path(str(item.fspath)).resolve().relative_to(_TESTS).as_posix()
        except ValueError:
            continue
        if rel in _SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
