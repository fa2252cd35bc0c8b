"""Suite-wide test configuration.

``slow``: tests that spawn Jupyter kernels, Hydra multiruns, interpreters or SIGKILLed processes, or that run
for seconds at a scale that is their point (a thousand outputs, a SHACL validation of a crate). The fast inner
loop is ``uv run pytest -m "not slow"``; CI runs everything (``uv run pytest``; both run in pytest-xdist workers,
one per core, set by ``addopts`` in pyproject.toml). A test is
slow by its own ``@pytest.mark.slow``, because its whole module is listed in ``_SLOW_MODULES``, or because it is
listed (``module::function``, every parametrization) in ``_SLOW_TESTS`` — listed here rather than marked in
the test files so that the fast loop's shape is decided in one place.
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
_SLOW_TESTS = {
    # a fresh interpreter per guide page, running the page's whole script
    "docs/test_guide.py::test_guide_page_runs",
    # a thousand outputs hashed, uploaded and registered: the count is the point
    "execution/test_lifecycle.py::test_thousand_outputs_make_constant_catalog_requests",
    "execution/test_round_trips.py::test_thousand_outputs_upload_with_bounded_requests",
    # caller detection and workflow identity in real subprocesses (interpreters, `uv run`)
    "source/test_source_shell.py::test_python_script_and_dash_m",
    "source/test_source_shell.py::test_wrapper_entry_point_falls_back_to_outermost_user_frame",
    "source/test_source_shell.py::test_uv_run_script",
    "source/test_source_shell.py::test_strict_env_in_subprocess",
    "execution/test_workflows.py::test_same_committed_script_twice_yields_one_row",
    "execution/test_workflows.py::test_dirty_script_warns_or_refuses",
    # the nbstripout command line as the oracle (an interpreter per call)
    "source/test_source_notebook.py::test_checksum_equals_nbstripout_cli_piped_to_git_hash_object",
    "source/test_source_notebook.py::test_repository_nbstripout_keys_are_honoured",
    # several processes at once on one SQLite file (spawned interpreters)
    "catalog/test_sqlite.py::test_two_processes_write_at_once",
    "catalog/test_sqlite.py::test_processes_opening_a_new_catalog_at_once_all_succeed",
    # a bag of 2,000 members built three times under tracemalloc (the peak memory is the point)
    "dataset/test_bag_paging.py::test_the_rows_of_all_members_are_not_held_at_once",
    # roc-validator's SHACL checks of a crate (seconds each); test_exports_of_a_recorded_sweep stays fast
    "provenance/test_exports.py::test_rocrate_of_a_sweep_is_valid",
    "provenance/test_exports.py::test_rocrate_without_the_code_references_the_url",
    "provenance/test_exports.py::test_metrics_are_in_a_valid_rocrate",
}
_TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            rel = Path(str(item.fspath)).resolve().relative_to(_TESTS).as_posix()
        except ValueError:
            continue
        name = getattr(item, "originalname", None) or item.name.partition("[")[0]
        if rel in _SLOW_MODULES or f"{rel}::{name}" in _SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
