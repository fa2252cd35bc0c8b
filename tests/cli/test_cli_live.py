"""``deriva-ml show`` and ``executions`` against a live DERIVA server (skipped without DERIVA_ML_TEST_HOST).

The subprocess finds its credential the way a user's does (deriva-py's credential file).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from cli.cli_support import populate, run_cli
from deriva_ml import DerivaML

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "live"))
from live_support import new_live_catalog, require_live, unique_token

pytestmark = pytest.mark.slow


def test_show_and_executions_on_a_live_catalog(tmp_path):
    require_live()
    host, catalog_id, cred = new_live_catalog("cli")
    ml = DerivaML(host, catalog_id, credential=cred, home=tmp_path)
    try:
        rids = populate(ml, unique_token())
    finally:
        ml.close()
    shown = run_cli("show", rids["parent"], "--host", host, "--catalog", catalog_id, home=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "CLI Training" in shown.stdout and "weights.bin" in shown.stdout and "2.0 KB" in shown.stdout
    assert f"dataset {rids['dataset']} @ 0.1.0" in shown.stdout and f"└── {rids['children'][1]}" in shown.stdout
    js = json.loads(
        run_cli("show", rids["parent"], "--host", host, "--catalog", catalog_id, "--json", home=tmp_path).stdout
    )
    assert js["execution"]["status"] == "Completed"
    listed = run_cli("executions", "--host", host, "--catalog", catalog_id, "--status", "Pending", home=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert sorted(line.split()[0] for line in listed.stdout.splitlines()[1:]) == sorted(
        [*rids["children"], rids["grandchild"]]
    )
    missing = run_cli("show", "1-0000", "--host", host, "--catalog", "999999", home=tmp_path)
    assert missing.returncode == 3 and len(missing.stderr.strip().splitlines()) == 1, missing.stderr
    assert f"no catalog '999999' on {host}" in missing.stderr
