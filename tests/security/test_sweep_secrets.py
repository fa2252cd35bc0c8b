"""Secrets in a multirun's overrides and a notebook dry run reach no file the library or Hydra leaves in the
user's folders (issue 12 leftovers, 2). Real ``deriva-ml-run -m`` / ``deriva-ml-run-notebook`` subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deriva_ml.execution._sweep import SweepDir, SweepInfo

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PW = "SweepDbPw-4c8Rk"
TOKEN = "SweepApiTok-5d9Sl"
DSN = "SweepDsnPw-6e0Tm"
NB_DSN = "NbDescDsnPw-7f1Un"


def _leaks(root: Path, secrets: list[str]) -> list[tuple[str, str]]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found.extend((s, str(path.relative_to(root))) for s in secrets if s.encode() in data)
    return found


COOKIE = "SweepEnvCookie-8g2Vo"
CRED_PW = "SweepCredPw-9h3Wp"
ALL = [PW, TOKEN, DSN, COOKIE, CRED_PW]


@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_multirun_sweep_dir_holds_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, launcher: str) -> None:
    """Secrets in the overrides, in the job's ``deriva_ml`` config (a credential, one of its values read
    from the environment) reach no file of the sweep, and parent.json still reconnects without them."""
    from runner.conftest import Project

    monkeypatch.setenv("DEMO_SWEEP_COOKIE", COOKIE)
    project = Project(tmp_path)
    extra = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
    run = project.run(
        "-m",
        "model_config.epochs=1,2",
        f"+db.password={PW}",
        f"+api.token={TOKEN}",
        f"+db.url=postgresql://ml:{DSN}@db.example.org/ml",
        # a DerivaML built with an explicit credential (the embedded catalog ignores it)
        "deriva_ml._target_=deriva_ml.DerivaML",
        "+deriva_ml.credential.cookie=${oc.env:DEMO_SWEEP_COOKIE}",
        f"+deriva_ml.credential.password={CRED_PW}",
        *extra,
    ).check()
    sweep = project.sweep_dir
    assert (sweep / "multirun.yaml").is_file() and (sweep / ".deriva_ml" / "sweep.json").is_file()
    # every file under the sweep folder (Hydra's multirun.yaml, each job's .hydra/, logs, deriva_ml's
    # sweep state: parent.json, sweep.json, jobs/*.json) and under the home (catalog, working directories,
    # objects); and the console
    assert sorted((sweep / ".deriva_ml" / "jobs").glob("*.json")) != []
    assert _leaks(tmp_path, ALL) == []
    assert all(s not in run.stdout + run.stderr for s in ALL)
    # still useful: the keys and the swept values are there
    multirun = (sweep / "multirun.yaml").read_text()
    assert "+db.password=<redacted>" in multirun and "model_config.epochs=1,2" in multirun
    assert "db.example.org" in multirun
    # parent.json names what it withheld and where the credential comes from instead
    parent = json.loads((sweep / ".deriva_ml" / "parent.json").read_text())
    assert parent["withheld"] == [["credential"]]
    assert parent["credential_ref"]["host"] == "local"
    assert "credential" not in parent["deriva_ml_config"]
    assert parent["deriva_ml_config"]["_target_"] == "deriva_ml.DerivaML"
    # ...and a later process finalizes the sweep from it (no secret needed, none written)
    again = project.run("--finalize-sweep", str(sweep)).check()
    assert f"sweep parent {parent['rid']} Completed" in again.stdout
    assert _leaks(tmp_path, ALL) == []


def test_killed_launcher_leaves_no_early_multirun_yaml(tmp_path: Path) -> None:
    """Hydra's basic sweeper writes multirun.yaml (raw overrides) before the first job, for every launcher.
    A dry-run sweep creates no parent, and here its launcher is killed while job 0 runs, so neither the
    parent's creation nor ``on_multirun_end`` redacts it: the job does, as it starts."""
    from runner.conftest import Project

    project = Project(tmp_path)
    project.kill_launcher_when(
        "-m", "dry_run=true", "model_config.sleep=60,0", f"+db.password={PW}", f"+api.token={TOKEN}"
    )
    assert (project.sweep_dir / "multirun.yaml").is_file()
    assert not (project.sweep_dir / ".deriva_ml" / "parent.json").exists()
    assert _leaks(tmp_path, [PW, TOKEN]) == []
    assert "+db.password=<redacted>" in (project.sweep_dir / "multirun.yaml").read_text()


def test_notebook_dry_run_configuration_is_redacted(tmp_path: Path) -> None:
    from runner.conftest import Project

    project = Project(tmp_path)
    run = project.run(
        "notebooks/fit_report.ipynb",
        "--dry-run",
        "--description",
        f"against postgresql://ml:{NB_DSN}@db.example.org/ml",
        module="deriva_ml.execution.notebook_runner",
    ).check()
    assert "DRY RUN" in run.stdout
    written = list(tmp_path.rglob("dry-run-configuration.json"))
    assert written, "the dry run wrote no configuration for its kernel"
    assert "postgresql://db.example.org/ml" in written[0].read_text()
    assert _leaks(tmp_path, [NB_DSN]) == []


def test_sweep_state_files_are_redacted(tmp_path: Path) -> None:
    """The unit level: sweep.json, job outcomes and Hydra's files as a killed launcher left them."""
    sweep = SweepDir(tmp_path / "sweep")
    sweep.write_sweep(SweepInfo([f"+db.password={PW}", "lr=0.1,0.2"], {}, 2))
    from deriva_ml.execution._sweep import JobOutcome

    sweep.record_job(JobOutcome(0, "Failed", None, f"cannot connect postgres://u:{DSN}@h/d"))
    (sweep.path / "multirun.yaml").write_text(f"hydra:\n  overrides:\n    task:\n    - +api.token={TOKEN}\n")
    job = sweep.path / "0" / ".hydra"
    job.mkdir(parents=True)
    (job / "overrides.yaml").write_text(f"- +db.password={PW}\n")
    changed = sweep.redact_hydra_files()
    assert {p.name for p in changed} == {"multirun.yaml", "overrides.yaml"}
    assert _leaks(sweep.path, [PW, TOKEN, DSN]) == []
    info = sweep.read_sweep()
    assert info is not None and info.overrides == ("+db.password=<redacted>", "lr=0.1,0.2")
    assert sweep.redact_hydra_files() == []  # idempotent


def test_live_sweep_with_an_inline_credential_writes_it_nowhere_and_finalizes_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the live server the job's DerivaML gets its (real) credential inline, read from the environment:
    parent.json withholds it, the launching process finalizes with its own copy, and a later
    ``--finalize-sweep`` reconnects with the host's stored credential (deriva-py's credential file)."""
    import importlib

    from runner.conftest import CATALOG, Project

    new_live_catalog = importlib.import_module("live_support").new_live_catalog  # runner.conftest put it on the path

    project = Project(tmp_path, new_live_catalog(CATALOG))
    assert project.live is not None and project.live[2] is not None
    cookie = project.live[2]["cookie"]
    monkeypatch.setenv("DEMO_SWEEP_COOKIE", cookie)
    run = project.run(
        "-m",
        "model_config.epochs=1,2",
        "deriva_ml._target_=deriva_ml.DerivaML",
        "+deriva_ml.credential.cookie=${oc.env:DEMO_SWEEP_COOKIE}",
    ).check()
    assert "sweep parent" in run.stdout
    parent = json.loads((project.sweep_dir / ".deriva_ml" / "parent.json").read_text())
    assert parent["withheld"] == [["credential"]] and parent["credential_ref"]["host"] == project.live[0]
    assert _leaks(tmp_path, [cookie]) == []
    again = project.run("--finalize-sweep", str(project.sweep_dir)).check()
    assert f"sweep parent {parent['rid']} Completed" in again.stdout
    assert _leaks(tmp_path, [cookie]) == []
