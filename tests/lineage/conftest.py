"""Lineage tests reuse the execution tests' backends (embedded, ERMrest + Hatrac fakes, live)."""

from execution.conftest import backend, ml, open_backend, remote_backend, workflow  # noqa: F401
