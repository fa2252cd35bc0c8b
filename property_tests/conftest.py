import os

import pytest
from hypothesis import HealthCheck, settings

# 200 examples per property for `uv run pytest` and in CI (derandomized there for stable runs). The fast inner
# loop (`-m "not slow"`, outside CI) runs every property with 25 examples; CI and the full run keep all 200.
# Properties that set their own `@settings(max_examples=...)` keep that count everywhere.
settings.register_profile("default", max_examples=200, deadline=None)
settings.register_profile(
    "ci", max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("fast", max_examples=25, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_configure(config: pytest.Config) -> None:
    fast_loop = (config.getoption("markexpr", "") or "").replace(" ", "") == "notslow"
    if fast_loop and not os.environ.get("CI") and not os.environ.get("HYPOTHESIS_PROFILE"):
        settings.load_profile("fast")
