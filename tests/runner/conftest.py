"""Fixtures for runner tests: the demo project run as a subprocess against a fresh catalog.

``project`` has two legs: ``embedded`` (a SQLite catalog under tmp) and ``live`` (a fresh catalog on the
server named by ``DERIVA_ML_TEST_HOST``, skipped without it; the subprocess gets ``--host/--catalog`` and
finds its credential the way a user's does, in deriva-py's credential file).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from deriva_ml import DerivaML
from deriva_ml.source import SourceWarning

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo_project"
CATALOG = "demo"


@attrs.frozen
class Run:
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> Run:
        assert self.returncode == 0, (
            f"exit {self.returncode}\nSTDOUT:\n{self.stdout[-4000:]}\nSTDERR:\n{self.stderr[-4000:]}"
        )
        return self


_LIVE = Path(__file__).resolve().parents[1] / "live"
if str(_LIVE) not in sys.path:
    sys.path.insert(0, str(_LIVE))


_LIVE_OVERRIDE = """
from hydra_zen import store

from deriva_ml.execution import DerivaMLConfig

for name, extra in (("default_deriva", {{}}), ("strict", {{"allow_dirty": False}})):
    store.delete_entry("deriva_ml", name)
    store(group="deriva_ml")(DerivaMLConfig(hostname={host!r}, catalog_id={catalog!r}, **extra), name=name)
"""


@attrs.define
class Project:
    tmp: Path
    #: ``None`` for the embedded catalog, else ``(host, catalog_id, credential)`` of a live catalog.
    live: tuple[str, str, dict[str, str] | None] | None = None

    @property
    def home(self) -> Path:
        return self.tmp / "home"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["DERIVA_ML_HOME"] = str(self.home)
        env["PYTHONWARNINGS"] = "ignore"
        env.pop("DERIVA_ML_CONFIG_MODULE", None)
        if self.live is not None:
            # the project's own connection configs, re-pointed at the live catalog (no extra overrides:
            # the recorded argv stays what the user typed)
            override = self.tmp / "live-config"
            override.mkdir(exist_ok=True)
            (override / "deriva_live_override.py").write_text(
                _LIVE_OVERRIDE.format(host=self.live[0], catalog=self.live[1])
            )
            env["DERIVA_ML_CONFIG_MODULE"] = "configs,deriva_live_override"
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(override), env.get("PYTHONPATH", "")) if p)
        return env

    def argv(self, *args: str, module: str = "deriva_ml.execution.runner") -> list[str]:
        extra = []
        if module.endswith(".runner") and "--finalize-sweep" not in args:
            extra = [f"hydra.run.dir={self.tmp / 'outputs'}", f"hydra.sweep.dir={self.tmp / 'multirun'}"]
        return [sys.executable, "-m", module, *args, *extra]

    def run(self, *args: str, module: str = "deriva_ml.execution.runner", timeout: float = 150) -> Run:
        proc = subprocess.run(
            self.argv(*args, module=module),
            cwd=DEMO,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def kill_launcher_when(self, *args: str, seen: str = "model: sleeping", timeout: float = 60) -> str:
        """Start ``deriva-ml-run ARGS`` and SIGKILL its whole process group once its output shows ``seen``;
        returns that output."""
        import signal
        import time

        log = self.tmp / "launcher.out"
        with log.open("w") as out:
            proc = subprocess.Popen(
                self.argv(*args),
                cwd=DEMO,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + timeout
            while seen not in log.read_text():
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        return log.read_text()

    def ml(self) -> DerivaML:
        if self.live is not None:
            host, catalog_id, credential = self.live
            return DerivaML(host, catalog_id, credential=credential, home=self.home)
        return DerivaML("local", CATALOG, home=self.home)

    @property
    def sweep_dir(self) -> Path:
        return self.tmp / "multirun"


@pytest.fixture(params=["embedded", "live"])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    if request.param == "embedded":
        yield Project(tmp_path)
        return
    from live_support import new_live_catalog

    yield Project(tmp_path, new_live_catalog(CATALOG))


def demo_inputs(ml: DerivaML) -> Any:
    """The demo project's inputs (``models/demo_data.py``): a dataset of point files and a starting model."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("demo_project_demo_data", DEMO / "models" / "demo_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SourceWarning)  # the test tree is a dirty checkout
        return module.create_demo_inputs(ml)


def configuration(ml: DerivaML, rid: str) -> dict[str, Any]:
    """configuration.json of an execution, as uploaded to the catalog and object store."""
    links = ml.catalog.query("deriva-ml", "Execution_Metadata_Execution", {"Execution": rid})
    rows = ml.catalog.query(
        "deriva-ml",
        "Execution_Metadata",
        {"RID": [r["Execution_Metadata"] for r in links], "Filename": "configuration.json"},
    )
    assert len(rows) == 1, rows
    dest = ml.working_dir / "test-downloads" / rid / "configuration.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    ml.store.get(rows[0]["URL"], dest, md5=rows[0]["MD5"])
    return dict(json.loads(dest.read_text()))


def metadata_files(ml: DerivaML, rid: str) -> dict[str, set[str]]:
    """File name -> asset types of the Execution_Metadata linked to an execution."""
    links = ml.catalog.query("deriva-ml", "Execution_Metadata_Execution", {"Execution": rid})
    rids = [r["Execution_Metadata"] for r in links]
    rows = ml.catalog.query("deriva-ml", "Execution_Metadata", {"RID": rids})
    types = ml.catalog.query("deriva-ml", "Execution_Metadata_Asset_Type", {"Execution_Metadata": rids})
    out: dict[str, set[str]] = {r["Filename"]: set() for r in rows}
    by_rid = {r["RID"]: r["Filename"] for r in rows}
    for t in types:
        out[by_rid[t["Execution_Metadata"]]].add(t["Asset_Type"])
    return out


def outputs(ml: DerivaML, rid: str, table: str = "Execution_Asset") -> dict[str, set[str]]:
    """File name -> asset types of the ``table`` assets an execution output."""
    links = ml.catalog.query("deriva-ml", f"{table}_Execution", {"Execution": rid, "Asset_Role": "Output"})
    rids = [r[table] for r in links]
    if not rids:
        return {}
    rows = ml.catalog.query("deriva-ml", table, {"RID": rids})
    types = ml.catalog.query("deriva-ml", f"{table}_Asset_Type", {table: rids})
    by_rid = {r["RID"]: r["Filename"] for r in rows}
    out: dict[str, set[str]] = {r["Filename"]: set() for r in rows}
    for t in types:
        out[by_rid[t[table]]].add(t["Asset_Type"])
    return out


def row_counts(ml: DerivaML) -> dict[str, int]:
    return {t.qualified: len(ml.catalog.query(t.schema, t.name)) for t in ml.catalog.model().tables}
