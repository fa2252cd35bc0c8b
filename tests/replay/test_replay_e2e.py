"""``deriva-ml replay`` end to end, as a user runs it (subprocesses, real git repositories, embedded catalog).

* a small training script in its own repository: replayed exactly (all outputs equal), with a changed seed
  (the differing file reported), refused for a dirty run, and ``--dry-run`` writes nothing;
* the demo (the issue's acceptance test): the package's code committed in a repository, ``deriva-ml demo``'s
  training replayed and reproduced — with its dataset pinned to the version the run read, although a newer
  version exists — and a changed seed reported as differing files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "source"))
from source_helpers import make_repo

pytestmark = pytest.mark.slow

TRAIN = """\
import argparse, json, random
from deriva_ml import DerivaML
from deriva_ml.execution import ExecutionConfiguration

p = argparse.ArgumentParser()
p.add_argument("--catalog")
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
ml = DerivaML("local", a.catalog)
wf = ml.create_workflow("toy training", "Training")
with ml.create_execution(ExecutionConfiguration(workflow=wf, description="toy")) as exe:
    rng = random.Random(a.seed)
    exe.asset_file_path("Execution_Asset", "weights.json").write_text(json.dumps([rng.random() for _ in range(5)]))
    exe.asset_file_path("Execution_Asset", "constant.txt").write_text("same\\n")
exe.upload_execution_outputs()
print("RID", exe.execution_rid)
"""


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DERIVA_ML_REPLAY")}
    env.update({"DERIVA_ML_HOME": str(home), **extra})
    return env


def _cli(*args: str, home: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deriva_ml.cli", *args],
        capture_output=True,
        text=True,
        env=_env(home),
        cwd=cwd,
        timeout=600,
    )


def _executions(home: Path, catalog: str) -> list[str]:
    out = _cli("executions", "--catalog", catalog, "--json", home=home)
    assert out.returncode == 0, out.stderr
    return [e["rid"] for e in json.loads(out.stdout)]


def _train(repo: Path, home: Path, seed: int) -> str:
    out = subprocess.run(
        [sys.executable, "train.py", "--catalog", "toy", "--seed", str(seed)],
        cwd=repo,
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split("RID ")[1].split()[0]


def test_a_script_is_replayed_exactly_and_a_changed_seed_is_reported(tmp_path: Path) -> None:
    home = tmp_path / "home"
    repo = make_repo(tmp_path / "toy", {"train.py": TRAIN}, remote="https://example.org/lab/toy.git")
    rid = _train(repo, home, seed=1)
    before = _executions(home, "toy")

    plan = _cli("replay", rid, "--catalog", "toy", "--dry-run", "--json", home=home, cwd=repo)
    assert plan.returncode == 0, plan.stderr
    p = json.loads(plan.stdout)
    assert (
        p["kind"] == "script"
        and p["path"] == "train.py"
        and p["command"][1:]
        == [
            "{checkout}/train.py",
            "--catalog",
            "toy",
            "--seed",
            "1",
        ]
    )
    assert sorted(a["filename"] for a in p["expected_outputs"]) == ["constant.txt", "weights.json"]
    assert _executions(home, "toy") == before  # the dry run wrote nothing

    same = _cli("replay", rid, "--catalog", "toy", "--json", home=home, cwd=repo)
    assert same.returncode == 0, same.stderr
    report = json.loads(same.stdout)
    assert report["reproduced"] is True and report["status"] == "Completed"
    assert {f["filename"]: f["outcome"] for f in report["files"]} == {"constant.txt": "equal", "weights.json": "equal"}
    assert report["replay"] not in before and report["replay"] in _executions(home, "toy")
    shown = json.loads(_cli("show", report["replay"], "--catalog", "toy", "--json", home=home).stdout)
    assert (
        shown["workflow"]["rid"]
        == json.loads(_cli("show", rid, "--catalog", "toy", "--json", home=home).stdout)["workflow"]["rid"]
    )  # the replay ran the same workflow row
    assert any(a["filename"] == f"replay-of-{rid}.json" for a in shown["outputs"]["assets"])

    seeded = _cli("replay", rid, "--catalog", "toy", "--override", "seed=2", home=home, cwd=repo)
    assert seeded.returncode == 1, seeded.stderr
    assert "NOT reproduced: 1 of 2 outputs differ" in seeded.stdout
    line = next(x for x in seeded.stdout.splitlines() if "weights.json" in x)
    assert line.split()[0] == "differs"
    assert next(x for x in seeded.stdout.splitlines() if "constant.txt" in x).split()[0] == "equal"


def test_a_dirty_run_is_refused_with_the_reason(tmp_path: Path) -> None:
    home = tmp_path / "home"
    repo = make_repo(tmp_path / "toy", {"train.py": TRAIN}, remote="https://example.org/lab/toy.git")
    (repo / "train.py").write_text(TRAIN.replace("same", "changed"))
    rid = _train(repo, home, seed=1)
    out = _cli("replay", rid, "--catalog", "toy", home=home, cwd=repo)
    assert out.returncode == 1
    assert "dirty run" in out.stderr and "does not match the file at commit" in out.stderr, out.stderr
    elsewhere = _cli("replay", rid, "--catalog", "toy", home=home, cwd=tmp_path)
    # from a directory outside the clone, the commit is not found offline: the message says where it looked
    assert elsewhere.returncode == 1 and "cannot find commit" in elsewhere.stderr and "--repo" in elsewhere.stderr


def _package_repo(root: Path) -> Path:
    """The deriva_ml package as committed in a repository of its own (what a fresh clone is)."""
    import deriva_ml

    pkg = Path(deriva_ml.__file__).resolve().parent
    files: dict[str, str | bytes] = {}
    for p in pkg.rglob("*"):
        if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".typed"):
            files[f"deriva_ml/{p.relative_to(pkg).as_posix()}"] = p.read_bytes()
    return make_repo(root, files, remote="https://example.org/lab/deriva-ml.git")


def test_the_demo_is_reproduced_and_a_changed_seed_reports_the_differing_files(tmp_path: Path) -> None:
    home = tmp_path / "home"
    repo = _package_repo(tmp_path / "clone")
    demo = subprocess.run(
        [sys.executable, "-m", "deriva_ml.cli", "demo", "--json"],
        cwd=repo,
        env=_env(home, PYTHONPATH=str(repo)),  # the clone's code, like `uv run deriva-ml demo` in a fresh clone
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stderr
    summary = json.loads(demo.stdout)
    rid = summary["execution_rid"]
    assert "example.org/lab/deriva-ml/blob/" in summary["workflow_url"] and summary["metrics"]["seed"] == 0
    dataset, version = summary["inputs"]["datasets"][0].split("@")

    from deriva_ml import DerivaML

    with DerivaML("local", "demo", home=home, create=False) as ml:  # a newer version exists now
        ml.increment_dataset_version(dataset, "minor", description="after the run")

    out = _cli("replay", rid, "--catalog", "demo", "--json", home=home, cwd=repo)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["reproduced"] is True
    assert {f["filename"] for f in report["files"]} == {"centroid_model.json", "training_metrics.json"}

    from deriva_ml.replay.run import gather_facts

    with DerivaML("local", "demo", home=home, create=False) as ml:
        facts = gather_facts(ml.catalog, ml.store, report["replay"], tmp_path)
    assert [(d.rid, d.version) for d in facts.datasets] == [(dataset, version)]  # pinned, not the newest

    seeded = _cli("replay", rid, "--catalog", "demo", "--override", "seed=7", home=home, cwd=repo)
    assert seeded.returncode == 1, seeded.stderr
    assert "NOT reproduced: 2 of 2 outputs differ" in seeded.stdout, seeded.stdout
    assert "differs   Model" in seeded.stdout


LIVE_TRAIN = (
    TRAIN.replace(
        'p.add_argument("--catalog")',
        'p.add_argument("--catalog")\np.add_argument("--host")\np.add_argument("--tag")',
    )
    .replace('DerivaML("local", a.catalog)', "DerivaML(a.host, a.catalog)")
    .replace('"same\\n"', 'a.tag + "\\n"')
    .replace("json.dumps([rng", "json.dumps([a.tag] + [rng")
)


def test_a_script_on_a_live_server_is_replayed(tmp_path: Path) -> None:
    """The same on a real ERMrest + Hatrac (skipped without DERIVA_ML_TEST_HOST); the subprocesses find
    their credential the way a user's do (deriva-py's credential file)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "live"))
    from live_support import new_live_catalog, unique_token

    host, catalog_id, _cred = new_live_catalog("replay")
    home = tmp_path / "home"
    token = unique_token()
    assert "a.tag + " in LIVE_TRAIN and "[a.tag] + " in LIVE_TRAIN and "DerivaML(a.host, a.catalog)" in LIVE_TRAIN
    repo = make_repo(tmp_path / "toy", {"train.py": LIVE_TRAIN}, remote="https://example.org/lab/toy.git")
    out = subprocess.run(
        [sys.executable, "train.py", "--host", host, "--catalog", catalog_id, "--seed", "1", "--tag", token],
        cwd=repo,
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    rid = out.stdout.split("RID ")[1].split()[0]
    same = _cli("replay", rid, "--host", host, "--catalog", catalog_id, "--json", home=home, cwd=repo)
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["reproduced"] is True
    seeded = _cli("replay", rid, "--host", host, "--catalog", catalog_id, "--override", "seed=2", home=home, cwd=repo)
    assert seeded.returncode == 1 and "NOT reproduced: 1 of 2 outputs differ" in seeded.stdout, seeded.stderr


def _project_repo(root: Path) -> Path:
    """examples/demo_project committed in a repository of its own."""
    src = Path(__file__).resolve().parents[2] / "examples" / "demo_project"
    files: dict[str, str | bytes] = {
        p.relative_to(src).as_posix(): p.read_bytes()
        for p in src.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and "outputs" not in p.parts and "multirun" not in p.parts
    }
    return make_repo(root, files, remote="https://example.org/lab/proj.git")


def test_a_hydra_run_is_replayed_with_its_recorded_overrides(tmp_path: Path) -> None:
    home = tmp_path / "home"
    repo = _project_repo(tmp_path / "proj")
    env = _env(home, PYTHONWARNINGS="ignore")
    env.pop("DERIVA_ML_CONFIG_MODULE", None)
    run = subprocess.run(
        [sys.executable, "-m", "deriva_ml.execution.runner", "model_config.epochs=3", "model_config.seed=2"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    rid = run.stdout.split("execution ")[1].split()[0]

    plan = _cli("replay", rid, "--catalog", "demo", "--dry-run", "--json", home=home, cwd=repo)
    assert plan.returncode == 0, plan.stderr
    p = json.loads(plan.stdout)
    assert p["kind"] == "hydra" and p["path"] == "models/linear.py"
    assert p["command"][-2:] == ["model_config.epochs=3", "model_config.seed=2"]
    # Hydra's own files describe the run; only the model's outputs are compared
    assert sorted(a["filename"] for a in p["expected_outputs"]) == ["metrics.json", "model.json"]

    same = _cli("replay", rid, "--catalog", "demo", "--json", home=home, cwd=repo)
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["reproduced"] is True
    other = _cli("replay", rid, "--catalog", "demo", "--override", "model_config.seed=5", "--json", home=home, cwd=repo)
    assert other.returncode == 1, other.stderr
    assert {f["filename"]: f["outcome"] for f in json.loads(other.stdout)["files"]} == {
        "model.json": "differs",
        "metrics.json": "differs",
    }


def test_a_notebook_run_is_replayed_with_its_parameters(tmp_path: Path) -> None:
    home = tmp_path / "home"
    repo = _project_repo(tmp_path / "proj")
    env = _env(home, PYTHONWARNINGS="ignore")
    env.pop("DERIVA_ML_CONFIG_MODULE", None)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "deriva_ml.execution.notebook_runner",
            "notebooks/fit_report.ipynb",
            "-p",
            "learning_rate",
            "0.5",
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    rid = run.stdout.split("execution ")[1].split()[0]
    out = _cli("replay", rid, "--catalog", "demo", "--json", home=home, cwd=repo)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["reproduced"] is True
    # the executed notebook (cell timings differ on every run) is a record of the run, not compared
    assert "fit_report.ipynb" not in {f["filename"] for f in report["files"]}
    assert "model.json" in {f["filename"] for f in report["files"]}
