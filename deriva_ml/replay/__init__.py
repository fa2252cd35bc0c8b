"""``deriva-ml replay``: re-run a recorded execution from its recorded code and inputs, and check that it
reproduces (outputs compared by MD5). See ``docs/reproducibility.md``.

* :func:`plan_replay` (pure): facts in, a :class:`ReplayPlan` out, or :class:`ReplayRefused` with the reason;
* :func:`plan_for` / :func:`run_replay` (shell): gather the facts from a catalog and object store, check out
  the recorded commit (dulwich, offline), run it as a new execution linked to the original, compare;
* :func:`compare_outputs` / :func:`render_report` (pure): the reproducibility report.

Light on import: the submodules load on first use (``deriva_ml.replay.link`` is read by every
``create_execution``).
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "AssetFact": "facts",
    "ExecutionFacts": "facts",
    "FileComparison": "report",
    "ReplayPlan": "plan",
    "ReplayRefused": "plan",
    "ReplayReport": "report",
    "SourceFacts": "facts",
    "apply_overrides": "plan",
    "compare_outputs": "report",
    "parse_workflow_url": "plan",
    "plan_replay": "plan",
    "render_plan": "plan",
    "render_report": "report",
    "gather_facts": "run",
    "plan_for": "run",
    "run_replay": "run",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'deriva_ml.replay' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"deriva_ml.replay.{module}"), name)


__all__ = sorted(_EXPORTS)
