"""Issue 16, items 1-3: every ``deriva-ml`` subcommand, run as a user runs it (a subprocess).

Errors are one line on stderr with a documented exit code (docs/cli.md), ``-v`` adds the traceback, a
closed pipe ends quietly, read-only commands never create a catalog, ``show`` shows the whole execution.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from cli.cli_support import populate, run_cli
from deriva_ml import DerivaML

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    ml = DerivaML("local", "proj", home=home)
    try:
        rids = populate(ml)
    finally:
        ml.close()
    return home, rids


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _one_line_error(out, code, *needles):
    assert out.returncode == code, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_show_prints_workflow_inputs_outputs_history_children_and_working_dir(home):
    root, rids = home
    out = run_cli("show", rids["parent"], "--catalog", "proj", home=root)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert f"execution {rids['parent']}  Completed" in text
    assert "CLI Training" in text and "https://github.com/org/repo/blob/abc123/train.py" in text
    assert "c" * 40 in text and "version:  1.2.3" in text
    assert f"dataset {rids['dataset']} @ 0.1.0" in text
    assert "weights.bin" in text and "2.0 KB" in text and "[Model]" in text
    assert "configuration.json" in text  # the execution's metadata files are outputs too
    history = text.split("status history\n")[1]
    for status in ("Initializing", "Pending", "Running", "Completed"):
        assert status in history
    c0, c1 = rids["children"]
    assert f"├── {c0}" in text and f"│   └── {rids['grandchild']}" in text and f"└── {c1}" in text
    assert f"working directory: {root}" in text

    js = run_cli("show", rids["parent"], "--catalog", "proj", "--json", home=root)
    info = json.loads(js.stdout)
    assert info["workflow"]["version"] == "1.2.3" and info["workflow"]["types"] == ["Training"]
    assert info["inputs"]["datasets"] == [{"rid": rids["dataset"], "version": "0.1.0", "role": "Input"}]
    model = [a for a in info["outputs"]["assets"] if a["table"] == "Model"]
    assert model[0]["filename"] == "weights.bin" and model[0]["length"] == 2048 and model[0]["types"] == ["Model"]
    assert [h["to_status"] for h in info["execution"]["history"]][-1] == "Completed"
    assert [c["rid"] for c in info["children"]] == rids["children"]
    assert [g["rid"] for g in info["children"][0]["children"]] == [rids["grandchild"]]
    assert info["working_dir"].startswith(str(root))


def test_executions_filters_and_aligned_table(home):
    root, rids = home
    out = run_cli("executions", "--catalog", "proj", home=root)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["RID", "STATUS", "CREATED", "DURATION", "WORKFLOW", "DESCRIPTION"]
    col = lines[0].index("STATUS")
    assert all(line[col - 2 : col] == "  " for line in lines[1:])  # aligned columns
    assert len(lines) == 1 + 5
    done = run_cli("executions", "--catalog", "proj", "--status", "completed", home=root).stdout
    assert rids["parent"] in done and rids["children"][0] not in done
    pending = run_cli("executions", "--catalog", "proj", "--status", "Pending", "--json", home=root)
    assert sorted(r["rid"] for r in json.loads(pending.stdout)) == sorted([*rids["children"], rids["grandchild"]])
    by_wf = run_cli("executions", "--catalog", "proj", "--workflow", "CLI Training", home=root).stdout
    assert len(by_wf.splitlines()) == 6
    assert run_cli("executions", "--catalog", "proj", "--workflow", "nope", home=root).stdout.splitlines()[1:] == []
    assert len(run_cli("executions", "--catalog", "proj", "--since", "1h", home=root).stdout.splitlines()) == 6
    future = run_cli("executions", "--catalog", "proj", "--since", "2999-01-01", home=root)
    assert future.returncode == 0 and future.stdout.splitlines()[1:] == []


def test_user_errors_are_one_line_with_documented_codes(home, tmp_path):
    root, rids = home
    _one_line_error(run_cli("show", "not-a-rid", "--catalog", "proj", home=root), 2, "not a valid RID")
    _one_line_error(
        run_cli("executions", "--catalog", "proj", "--status", "bogus", home=root), 2, "'bogus'", "Completed"
    )
    _one_line_error(run_cli("executions", "--catalog", "proj", "--since", "yesterday", home=root), 2, "--since")
    _one_line_error(run_cli("show", "9-ZZZZ", "--catalog", "proj", home=root), 3, "9-ZZZZ", "not found")
    line = _one_line_error(run_cli("show", rids["dataset"], "--catalog", "proj", home=root), 3)
    assert "is a row of table 'deriva-ml:Dataset', not of table 'Execution'" in line
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = _one_line_error(run_cli("executions", "--host", f"127.0.0.1:{port}", "--catalog", "1", home=tmp_path), 1)
    assert "cannot reach" in line and "refused" in line.lower()
    # argparse usage errors: exit 2
    bad = run_cli("show", home=root)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    # -v (before or after the subcommand) shows the traceback
    for args in (["-v", "show", "9-ZZZZ"], ["show", "9-ZZZZ", "-v"]):
        verbose = run_cli(*args, "--catalog", "proj", home=root)
        assert verbose.returncode == 3 and "Traceback" in verbose.stderr and "RIDNotFound" in verbose.stderr


def test_read_only_commands_never_create_a_catalog(home):
    root, _ = home
    before = _tree(root)
    for args in (
        ["executions", "--catalog", "demoo"],
        ["show", "1-0000", "--catalog", "nosuch"],
        ["abort-stale", "--catalog", "nosuch"],
        ["sync", "--catalog", "nosuch", "--to-host", "127.0.0.1:1", "--to-catalog", "1"],
    ):
        line = _one_line_error(run_cli(*args, home=root), 3)
        assert "existing catalogs: 'proj'" in line, line
    assert run_cli("cache", "stats", home=root).returncode == 0
    assert _tree(root) == before
    assert not (root / "catalogs" / "default").exists()


def test_cache_stats_in_an_empty_home_creates_nothing(tmp_path):
    home = tmp_path / "fresh"
    out = run_cli("cache", "stats", home=home)
    assert out.returncode == 0 and "entries=0" in out.stdout
    assert not home.exists()


def test_a_closed_pipe_ends_quietly(home):
    root, _ = home
    env = {**os.environ, "DERIVA_ML_HOME": str(root)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "deriva_ml.cli", "executions", "--catalog", "proj"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    proc.stdout.close()  # the reader is gone before the first line is written (like `| head` after it stops)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err, err
