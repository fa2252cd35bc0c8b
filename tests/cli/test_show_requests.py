"""``show`` and ``executions`` cost a bounded number of requests on a server, however big the execution."""

from __future__ import annotations

import sys
from pathlib import Path

from cli.cli_support import populate
from deriva_ml.cli._show import gather, render

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "live"))
from live_support import unique_token


def _requests(ml, fn):
    before = ml.catalog.request_count
    result = fn()
    return ml.catalog.request_count - before, result


def test_show_makes_no_per_row_requests(remote_backend):
    small_ml = remote_backend()
    small = populate(small_ml, unique_token(), n_outputs=1)
    ml = remote_backend()
    ml.catalog.model()  # the model is fetched once per handle; not part of show's cost
    n_small, info = _requests(ml, lambda: gather(ml, small["parent"]))
    assert [c["rid"] for c in info["children"]] == small["children"]
    text = "\n".join(render(info))
    assert "weights.bin" in text and "CLI Training" in text

    # a bigger execution (more outputs, same tables) costs exactly as much
    big = populate(small_ml, unique_token(), n_outputs=6)
    n_big, info = _requests(ml, lambda: gather(ml, big["parent"]))
    assert len([a for a in info["outputs"]["assets"] if a["table"] == "Model"]) == 6
    assert n_big == n_small
    assert n_small <= 25, n_small
