"""``deriva-ml diff`` and ``deriva-ml export``: in-process (``main([...])``) on every backend's catalog kind
that the CLI opens (embedded), and once as a user runs them (a subprocess, slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from deriva_ml import DerivaML
from deriva_ml.cli import main
from deriva_ml.sync import sync
from provenance.prov_support import record_inputs, record_run, record_sweep, setup_domain


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, str]]:
    home = tmp_path / "home"
    monkeypatch.setenv("DERIVA_ML_HOME", str(home))
    ml = DerivaML("local", "proj", home=home)
    try:
        setup_domain(ml)
        inputs = record_inputs(ml, "tok")
        rids = {
            "one": record_run(ml, "tok", inputs, seed=1),
            "same": record_run(ml, "tok", inputs, seed=1, description="again"),
            "seed2": record_run(ml, "tok", inputs, seed=2),
            "sweep": record_sweep(ml, "tok", inputs, seeds=(1, 2)),
        }
    finally:
        ml.close()
    return home, rids


def test_diff_same_content_exits_0(home: Any, capsys: pytest.CaptureFixture[str]) -> None:
    root, rids = home
    assert main(["diff", rids["one"], rids["same"], "--catalog", "proj", "--home", str(root)]) == 0
    assert "same content" in capsys.readouterr().out


def test_diff_reports_what_differs_and_exits_4(home: Any, capsys: pytest.CaptureFixture[str]) -> None:
    root, rids = home
    assert main(["diff", rids["one"], rids["seed2"], "--catalog", "proj", "--home", str(root), "--json"]) == 4
    out = json.loads(capsys.readouterr().out)
    assert out["same"] is False and out["a"] == rids["one"] and out["b"] == rids["seed2"]
    assert out["sections"] == ["configuration", "outputs"]
    paths = {c["path"] for c in out["changes"]}
    assert "configuration.arguments" in paths
    assert "outputs.assets[Model/model.tar.gz].md5" in paths
    assert main(["diff", rids["one"], rids["seed2"], "--catalog", "proj", "--home", str(root)]) == 4
    text = capsys.readouterr().out
    assert "differ in configuration, outputs" in text and "~ outputs.assets[Model/model.tar.gz].md5" in text


def test_diff_across_catalogs_after_sync(home: Any, capsys: pytest.CaptureFixture[str]) -> None:
    root, rids = home
    src = DerivaML("local", "proj", home=root)
    dst = DerivaML("local", "copy", home=root)
    try:
        report = sync(src, dst, progress=False)
    finally:
        src.close()
        dst.close()
    copied = report.target_rid(rids["sweep"])
    args = ["diff", rids["sweep"], copied, "--catalog", "proj", "--b-catalog", "copy", "--home", str(root), "--recurse"]
    assert main(args) == 0, capsys.readouterr()


def test_diff_unknown_rid_is_not_found(home: Any, capsys: pytest.CaptureFixture[str]) -> None:
    root, rids = home
    assert main(["diff", rids["one"], "9-ZZZZ", "--catalog", "proj", "--home", str(root)]) == 3
    assert "9-ZZZZ" in capsys.readouterr().err
    assert main(["diff", rids["one"], "not a rid!", "--catalog", "proj", "--home", str(root)]) == 2


def test_export_prov_json_and_rocrate(home: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from prov.model import ProvDocument

    root, rids = home
    assert (
        main(["export", rids["sweep"], "--format", "prov-json", "--recurse", "--catalog", "proj", "--home", str(root)])
        == 0
    )
    doc = ProvDocument.deserialize(content=capsys.readouterr().out, format="json")
    assert len([r for r in doc.get_records() if "execution/" in str(r.identifier)]) == 3
    dest = tmp_path / "crate"
    assert (
        main(["export", rids["one"], "--format", "ro-crate", "-o", str(dest), "--catalog", "proj", "--home", str(root)])
        == 0
    )
    meta = json.loads((dest / "ro-crate-metadata.json").read_text())
    assert any(e.get("@id") == f"#execution-{rids['one']}" for e in meta["@graph"])


def test_export_includes_the_workflow_code_found_in_the_git_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recorded checksum is a git blob id: the crate carries the code when the repository holds it."""
    from dulwich.repo import Repo

    from deriva_ml.cli._export import workflow_source
    from deriva_ml.source.git import blob_id_of_bytes

    repo_dir = tmp_path / "repo"
    repo_dir.mkdir()
    code = b"print('train')\n"
    with Repo.init(str(repo_dir)) as repo:
        from dulwich.objects import Blob

        blob = Blob.from_string(code)
        repo.object_store.add_object(blob)
    out = tmp_path / "out"
    out.mkdir()
    found = workflow_source(blob_id_of_bytes(code), "https://g/x/blob/abc/train.py", repo_dir, out)
    assert found is not None and found.name == "train.py" and found.read_bytes() == code
    assert workflow_source("0" * 40, "u", repo_dir, out) is None
    assert workflow_source(blob_id_of_bytes(code), "u", tmp_path / "nowhere", out) is None


@pytest.mark.slow
def test_diff_and_export_as_a_user_runs_them(home: Any, tmp_path: Path) -> None:
    root, rids = home
    env = {**os.environ, "DERIVA_ML_HOME": str(root)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "deriva_ml.cli", *args], capture_output=True, text=True, env=env, timeout=300
        )

    same = run("diff", rids["one"], rids["same"], "--catalog", "proj")
    assert same.returncode == 0 and "same content" in same.stdout, same.stderr
    differ = run("diff", rids["one"], rids["seed2"], "--catalog", "proj", "--json")
    assert differ.returncode == 4 and json.loads(differ.stdout)["sections"] == ["configuration", "outputs"]
    missing = run("diff", rids["one"], "9-ZZZZ", "--catalog", "proj")
    assert missing.returncode == 3 and len(missing.stderr.strip().splitlines()) == 1
    crate = run("export", rids["one"], "--format", "ro-crate", "-o", str(tmp_path / "c"), "--catalog", "proj")
    assert crate.returncode == 0 and (tmp_path / "c" / "ro-crate-metadata.json").is_file(), crate.stderr
