"""The shell of ``deriva-ml replay``: gather the facts, plan, check out, run, compare.

Takes the catalog and object store ports (never the ``DerivaML`` facade). Requests: a fixed number per
execution plus two per asset table that has an execution link table (``gather_facts``), whatever the number
of inputs and outputs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from deriva_ml.catalog.port import Catalog
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.errors import RIDNotFound
from deriva_ml.core.rid import parse_rid
from deriva_ml.replay.facts import AssetFact, ExecutionFacts, InputDataset
from deriva_ml.replay.link import ENV_REPLAY_RECORD
from deriva_ml.replay.plan import ReplayPlan, ReplayRefused, parse_workflow_url, plan_replay
from deriva_ml.replay.report import ReplayReport, compare_outputs
from deriva_ml.store.port import ObjectStore


def gather_assets(catalog: Catalog, rid: str) -> tuple[list[AssetFact], list[AssetFact]]:
    """(inputs, outputs) of one execution: per asset table with a ``<Table>_Execution`` link table, one
    links query and (when there are links) one rows query."""
    from deriva_ml.provenance.gather import asset_link_tables

    inputs: list[AssetFact] = []
    outputs: list[AssetFact] = []
    for t, link_table, _types in asset_link_tables(catalog.model()):
        links = catalog.query(link_table.schema, link_table.name, {"Execution": rid})
        arids = list(dict.fromkeys(r[t.name] for r in links if r.get(t.name)))
        if not arids:
            continue
        rows = {r["RID"]: r for r in catalog.query(t.schema, t.name, {"RID": arids})}
        for link in links:
            row = rows.get(link.get(t.name))
            if row is None:
                continue
            fact = AssetFact(
                table=t.name,
                rid=str(row["RID"]),
                filename=str(row.get("Filename") or ""),
                md5=row.get("MD5"),
                length=row.get("Length"),
            )
            (inputs if link.get("Asset_Role") == "Input" else outputs).append(fact)
    return inputs, outputs


def gather_facts(catalog: Catalog, store: ObjectStore, rid: str, scratch: Path) -> ExecutionFacts:
    """What the catalog recorded about execution ``rid`` (its configuration.json is read from the store
    into ``scratch``)."""
    rid = parse_rid(rid, "execution rid")
    rows = catalog.query(ML_SCHEMA, "Execution", {"RID": rid})
    if not rows:
        raise RIDNotFound(rid, "Execution")
    row = rows[0]
    wf: dict[str, Any] = {}
    if row.get("Workflow"):
        found = catalog.query(ML_SCHEMA, "Workflow", {"RID": row["Workflow"]})
        wf = dict(found[0]) if found else {}
    children = catalog.query(ML_SCHEMA, "Execution_Execution", {"Execution": rid}, limit=1)
    inputs, outputs = gather_assets(catalog, rid)
    lock = next((a for a in outputs if a.table == "Execution_Metadata" and a.filename == "uv.lock"), None)
    url_text = wf.get("URL")
    return ExecutionFacts(
        rid=str(rid),
        status=str(row.get("Status") or ""),
        description=str(row.get("Description") or ""),
        workflow_rid=wf.get("RID"),
        workflow_name=wf.get("Name"),
        workflow_url=url_text,
        workflow_checksum=wf.get("Checksum"),
        is_notebook=str(url_text or "").endswith(".ipynb"),
        **_how_it_ran(catalog, store, rid, outputs, scratch),
        inputs=inputs,
        outputs=outputs,
        has_children=bool(children),
        lock_md5=lock.md5 if lock else None,
    )


def _how_it_ran(
    catalog: Catalog, store: ObjectStore, rid: str, outputs: Sequence[AssetFact], scratch: Path
) -> dict[str, Any]:
    """``argv``, ``config_choices`` and the input ``datasets`` (with the versions used) from the execution's
    ``configuration.json`` (read into ``scratch``); without one (an execution that never initialized), its
    input dataset links, versions unknown."""
    from deriva_ml.core.codec import configuration_from_json

    config_row = next(
        (a for a in outputs if a.table == "Execution_Metadata" and a.filename == "configuration.json"), None
    )
    if config_row is None:
        links = catalog.query(ML_SCHEMA, "Dataset_Execution", {"Execution": rid})
        inputs = [ln for ln in links if (ln.get("Asset_Role") or "Input") == "Input"]
        return {"datasets": [InputDataset(str(ln["Dataset"]), None) for ln in inputs]}
    url = catalog.query(ML_SCHEMA, "Execution_Metadata", {"RID": config_row.rid}, columns=["RID", "URL"])[0]["URL"]
    dest = scratch / f"configuration-{rid}.json"
    store.get(url, dest, md5=config_row.md5)
    cfg = configuration_from_json(dest.read_text(encoding="utf-8"))
    return {
        "argv": tuple(cfg.argv),
        "config_choices": dict(cfg.config_choices),
        "datasets": [InputDataset(str(d.rid), str(d.version) if d.version else None) for d in cfg.datasets],
    }


def default_repositories() -> list[Path]:
    """Where the recorded commit is looked for when no ``--repo`` is given: the current directory's
    repository, then the one holding the running deriva_ml package (a development checkout)."""
    import deriva_ml

    return [Path.cwd(), Path(deriva_ml.__file__).resolve().parent]


def _scripts_dir() -> str | None:
    bin_dir = Path(sys.executable).parent
    return str(bin_dir) if (bin_dir / "deriva-ml-run").exists() else None


@contextlib.contextmanager
def prepared(
    catalog: Catalog,
    store: ObjectStore,
    rid: str,
    overrides: Sequence[str],
    repositories: Sequence[str | os.PathLike[str]],
) -> Iterator[tuple[ExecutionFacts, ReplayPlan, Path]]:
    """Gather, locate the code offline and plan, in a scratch directory removed on exit (nothing else is
    written): yields the facts, the plan and that directory."""
    from deriva_ml.replay._git import locate_source

    with tempfile.TemporaryDirectory(prefix="deriva-ml-replay-") as tmp:
        scratch = Path(tmp)
        facts = gather_facts(catalog, store, rid, scratch)
        loc = parse_workflow_url(facts.workflow_url)
        source = locate_source(loc, facts.workflow_checksum, [*repositories, *default_repositories()])
        plan = plan_replay(facts, source, overrides=overrides, python=sys.executable, scripts_dir=_scripts_dir())
        yield facts, plan, scratch


def plan_for(
    catalog: Catalog,
    store: ObjectStore,
    rid: str,
    *,
    overrides: Sequence[str] = (),
    repositories: Sequence[str | os.PathLike[str]] = (),
) -> ReplayPlan:
    """The replay plan of execution ``rid`` (``--dry-run``): nothing is written."""
    with prepared(catalog, store, rid, overrides, repositories) as (_facts, plan, _scratch):
        return plan


def run_replay(
    catalog: Catalog,
    store: ObjectStore,
    rid: str,
    *,
    overrides: Sequence[str] = (),
    repositories: Sequence[str | os.PathLike[str]] = (),
    env: dict[str, str] | None = None,
    echo: Callable[[str], None] | None = None,
    keep_checkout: bool = False,
) -> ReplayReport:
    """Replay execution ``rid``: check out its commit into a temporary directory, run the recorded command
    there (a new execution linked to the original, inputs pinned to the recorded versions) and compare
    its outputs with the original's by MD5.

    ``env``: the environment of the replayed command (default ``os.environ``); ``echo``: receives the
    command's output lines (default: written to stderr)."""
    from deriva_ml.replay._git import export_commit

    say = echo or (lambda line: print(line, file=sys.stderr))
    with prepared(catalog, store, rid, overrides, repositories) as (facts, plan, scratch):
        checkout = scratch / "checkout"
        checkout.mkdir()
        export_commit(plan.repo_root, plan.commit, checkout)
        record = scratch / "executions.txt"
        record.touch()
        base = dict(os.environ if env is None else env)
        child_env = {**base, **plan.env, ENV_REPLAY_RECORD: str(record)}
        if plan.pythonpath:
            entries = [p.replace("{checkout}", str(checkout)) for p in plan.pythonpath]
            child_env["PYTHONPATH"] = os.pathsep.join([*entries, *filter(None, [base.get("PYTHONPATH")])])
        command = [c.replace("{checkout}", str(checkout)) for c in plan.command]
        proc = subprocess.run(command, cwd=checkout, env=child_env, capture_output=True, text=True)
        for line in (proc.stdout + proc.stderr).splitlines():
            say(line)
        created = [line.strip() for line in record.read_text(encoding="utf-8").splitlines() if line.strip()]
        if keep_checkout:
            kept = Path(tempfile.mkdtemp(prefix="deriva-ml-replay-checkout-"))
            shutil.copytree(checkout, kept, dirs_exist_ok=True, symlinks=True)
            say(f"checkout kept at {kept}")
    warnings = list(plan.warnings)
    if not created:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise ReplayRefused(f"the replayed command exited {proc.returncode} without creating an execution: {tail[0]}")
    new_rid = created[-1]
    if len(created) > 1:
        warnings.append(
            f"the replayed command created {len(created)} executions ({', '.join(created)}); compared the last"
        )
    rows = catalog.query(ML_SCHEMA, "Execution", {"RID": new_rid})
    if not rows:
        raise ReplayRefused(
            f"the replayed command created execution {new_rid}, which is not in this catalog (it connects to "
            f"another one: check its recorded arguments)"
        )
    _inputs, outputs = gather_assets(catalog, new_rid)
    if proc.returncode != 0:
        warnings.append(f"the replayed command exited {proc.returncode}")
    lock = next((a for a in outputs if a.table == "Execution_Metadata" and a.filename == "uv.lock"), None)
    if facts.lock_md5 and lock is not None and lock.md5 != facts.lock_md5:
        warnings.append("the environment differs: uv.lock of the replay is not the original's")
    return compare_outputs(
        facts.rid, facts.outputs, new_rid, outputs, status=str(rows[0].get("Status") or ""), warnings=warnings
    )
