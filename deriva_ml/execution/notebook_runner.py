"""``deriva-ml-run-notebook``: execute a Jupyter notebook as a recorded DerivaML execution.

The runner owns the execution's lifecycle; the notebook only uses it:

1. the runner composes the project's configs (``deriva_ml``, ``datasets``, ``assets``, ``workflow`` groups;
   Hydra overrides allowed; the ``workflow`` option named after the notebook, e.g. ``fit_report`` for
   ``fit_report.ipynb``, is the default when the project defines one), builds the workflow from the
   *notebook file* (URL + nbstripout-normalised checksum), creates the execution (inputs downloaded,
   metadata uploaded) and starts it (Running);
2. it injects the ``-p KEY VALUE`` parameters as a code cell (after the cell tagged ``parameters`` when
   there is one, like papermill) and executes the notebook with nbclient. The kernel inherits
   ``DERIVA_ML_EXECUTION_RID``, the connection (``DERIVA_ML_HOSTNAME``, ``DERIVA_ML_CATALOG_ID``,
   ``DERIVA_ML_HOME``...) and ``DERIVA_ML_WORKFLOW_URL``/``DERIVA_ML_WORKFLOW_CHECKSUM``;
3. inside the notebook ``ml, execution = notebook_execution()`` restores that execution; files registered
   with ``execution.asset_file_path(...)`` go into the same crash-safe manifest;
4. the executed notebook (partial, when a cell failed) is written as an ``Execution_Asset`` of type
   ``Notebook_Output``; the execution is stopped (Completed, or Failed with the cell error) and every
   registered output is uploaded. A failed notebook exits with status 1.

``--dry-run`` does the same against the catalog read-only: the notebook runs (``notebook_execution()``
returns a dry-run execution) and nothing is written to the catalog or the object store.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from deriva_ml.core.records import ExecutionConfiguration, Workflow
from deriva_ml.core.status import Status
from deriva_ml.execution._hydra_configs import DerivaMLConnection

if TYPE_CHECKING:
    from deriva_ml._ml import DerivaML
    from deriva_ml.execution._execution import Execution

PROG = "deriva-ml-run-notebook"
NOTEBOOK_CONFIG_NAME = "deriva_notebook"
EXECUTION_RID_ENV = "DERIVA_ML_EXECUTION_RID"
#: Set to ``true`` in the kernel of a ``--dry-run``; ``DERIVA_ML_CONFIGURATION`` then names the
#: execution's configuration.json, from which ``notebook_execution()`` makes its own dry-run execution.
DRY_RUN_ENV = "DERIVA_ML_DRY_RUN"
CONFIGURATION_ENV = "DERIVA_ML_CONFIGURATION"
INJECTED_TAG = "injected-parameters"


# -------------------------------------------------------------------------------- inside the kernel


def notebook_execution() -> tuple[DerivaML, Execution]:
    """``ml, execution = notebook_execution()``: the DerivaML connection and the running Execution that
    ``deriva-ml-run-notebook`` created for this notebook (read from ``DERIVA_ML_*`` environment variables).

    Outside the runner (no ``DERIVA_ML_EXECUTION_RID``) it raises, naming what to do instead.
    """
    from deriva_ml.core.errors import ExecutionError

    rid = os.environ.get(EXECUTION_RID_ENV)
    if not rid:
        raise ExecutionError(
            f"{EXECUTION_RID_ENV} is not set: run this notebook with `{PROG} NOTEBOOK.ipynb`, or create an "
            "execution yourself with ml.create_execution(...)"
        )
    ml = DerivaMLConnection.from_env(os.environ).connect()
    if os.environ.get(DRY_RUN_ENV, "").lower() == "true":
        from deriva_ml.core.codec import configuration_from_json

        config = configuration_from_json(Path(os.environ[CONFIGURATION_ENV]).read_text())
        exe = ml.create_execution(config, dry_run=True)  # nothing reaches the catalog
        exe.execution_start()
        return ml, exe
    return ml, ml.restore_execution(rid)


# --------------------------------------------------------------------------------------- parameters


def parse_value(text: str) -> Any:
    """``-p`` values are YAML scalars/lists (``0.1``, ``true``, ``[1, 2]``); anything else stays a string."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parameters_source(params: dict[str, Any]) -> str:
    lines = [f"# Parameters injected by {PROG}"]
    for key, value in params.items():
        if not key.isidentifier():
            raise SystemExit(f"{PROG}: parameter name {key!r} is not a Python identifier")
        lines.append(f"{key} = {value!r}")
    return "\n".join(lines) + "\n"


def redacted_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` as they may be published: the value of a parameter whose name looks secret
    (``api_token``, ``db_password``) is ``<redacted>`` whatever its type; string values are scrubbed by the
    text rules (credentialed URLs, well-known tokens). The kernel still receives the real values."""
    from deriva_ml.core.redact import REDACTED, is_secret_name, redact_jsonable

    return {
        k: REDACTED if is_secret_name(k) else redact_jsonable(v, key=k) if isinstance(v, str) else v
        for k, v in params.items()
    }


def publishable(nb: Any, params: dict[str, Any]) -> Any:
    """The executed notebook with its injected-parameters cell rewritten from :func:`redacted_parameters`:
    what is uploaded and kept in the working directory. The rest of the notebook (cells, outputs) is the
    user's and is kept as it ran."""
    if not params:
        return nb
    for cell in nb.cells:
        if INJECTED_TAG in (cell.get("metadata", {}).get("tags") or []):
            cell.source = parameters_source(redacted_parameters(params))
    return nb


def inject_parameters(nb: Any, params: dict[str, Any]) -> Any:
    """A copy of ``nb`` with a code cell of ``params`` (tag ``injected-parameters``) after the cell tagged
    ``parameters``, or first when no cell has that tag. Without parameters the notebook is unchanged."""
    import copy

    import nbformat

    if not params:
        return nb
    out = copy.deepcopy(nb)
    cell = nbformat.v4.new_code_cell(parameters_source(params))  # type: ignore[no-untyped-call]
    cell.metadata["tags"] = [INJECTED_TAG]
    out.cells = [c for c in out.cells if INJECTED_TAG not in (c.get("metadata", {}).get("tags") or [])]
    index = 0
    for i, c in enumerate(out.cells):
        if "parameters" in (c.get("metadata", {}).get("tags") or []):
            index = i + 1
            break
    out.cells.insert(min(index, len(out.cells)), cell)
    return out


# ------------------------------------------------------------------------------------------- config


def _compose(overrides: Sequence[str], notebook_stem: str = "") -> tuple[Any, dict[str, str]]:
    """Compose the notebook config (``deriva_ml``/``datasets``/``assets``/``workflow`` groups) with overrides.

    Unless the project stores its own ``deriva_notebook`` config, the default workflow is the ``workflow``
    option named after the notebook (``fit_report`` for ``fit_report.ipynb``) when there is one, else none
    (``workflow=NAME`` selects one).
    """
    from hydra import compose, initialize
    from hydra.core.config_store import ConfigStore
    from hydra_zen import make_config, store
    from omegaconf import OmegaConf, open_dict

    from deriva_ml.execution._hydra_configs import register_fallbacks
    from deriva_ml.execution.runner import config_choices_of

    register_fallbacks()
    store.add_to_hydra_store(overwrite_ok=True)
    if (None, NOTEBOOK_CONFIG_NAME) not in store:
        node = make_config(
            hydra_defaults=[
                "_self_",
                {"deriva_ml": "default_deriva"},
                {"optional datasets": "default_dataset"},
                {"optional assets": "default_asset"},
                # null: no workflow unless the notebook has its own option; ``workflow=NAME`` still works
                {"workflow": notebook_stem if notebook_stem and ("workflow", notebook_stem) in store else None},
            ],
            deriva_ml=None,
            datasets=None,
            assets=None,
            workflow=None,
            description="",
        )
        # Hydra's own store (not hydra-zen's): it is rebuilt for each notebook
        ConfigStore.instance().store(name=NOTEBOOK_CONFIG_NAME, node=OmegaConf.to_container(OmegaConf.structured(node)))
    with initialize(version_base="1.3", config_path=None):
        cfg = compose(config_name=NOTEBOOK_CONFIG_NAME, overrides=list(overrides), return_hydra_config=True)
    choices = config_choices_of(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices


@attrs.frozen
class NotebookResult:
    execution_rid: str
    status: Status
    output_notebook: str
    error: str = ""
    dry_run: bool = False


def run_notebook(
    notebook: str | os.PathLike[str],
    parameters: dict[str, Any] | None = None,
    overrides: Sequence[str] = (),
    *,
    workflow_type: str | None = None,
    description: str | None = None,
    kernel_name: str | None = None,
    timeout: int | None = None,
    argv: Sequence[str] = (),
    dry_run: bool = False,
) -> NotebookResult:
    """Execute ``notebook`` as a new execution (see the module docstring); never raises for a cell error.

    ``dry_run=True``: the notebook runs, nothing is written to the catalog or object store."""
    import nbformat
    from nbclient import NotebookClient

    from deriva_ml.core.definitions import ExecAssetType
    from deriva_ml.execution._execution import redacted_configuration_json
    from deriva_ml.execution.runner import _as_list, _connection, _connection_of, _instantiate

    nb_path = Path(notebook).resolve()
    if not nb_path.is_file():
        raise SystemExit(f"{PROG}: no notebook {str(nb_path)!r}")
    cfg, choices = _compose(overrides, nb_path.stem)
    conn = _connection(cfg.get("deriva_ml"))
    ml = conn.connect() if isinstance(conn, DerivaMLConnection) else conn
    try:
        wf_cfg = _instantiate(cfg.workflow) if cfg.get("workflow") is not None else None
        base = wf_cfg if isinstance(wf_cfg, Workflow) else Workflow(name=nb_path.stem, workflow_type="Analysis")
        base = attrs.evolve(
            base,
            workflow_type=(workflow_type,) if workflow_type else base.workflow_type,
            description=base.description or f"Notebook {nb_path.name}",
            is_notebook=True,
        )
        wf = ml.create_workflow_from_record(base, caller_file=nb_path)
        config = ExecutionConfiguration(
            workflow=wf,
            description=description or str(cfg.get("description") or "") or f"Notebook {nb_path.name}",
            datasets=_as_list(_instantiate(cfg.get("datasets"))),
            assets=_as_list(_instantiate(cfg.get("assets"))),
            argv=tuple(argv) or (PROG, str(nb_path), *list(overrides)),
            config_choices=choices,
        )
        exe = ml.create_execution(config, dry_run=dry_run)
        out_path = exe.asset_file_path(
            "Execution_Asset", nb_path.name, asset_types=[ExecAssetType.notebook_output.value]
        )
        nb = inject_parameters(nbformat.read(nb_path, as_version=4), dict(parameters or {}))  # type: ignore[no-untyped-call]
        env = {
            **_connection_of(ml).as_env(),
            EXECUTION_RID_ENV: str(exe.execution_rid),
            "DERIVA_ML_WORKFLOW_URL": wf.url or "",
            "DERIVA_ML_WORKFLOW_CHECKSUM": wf.checksum or "",
        }
        if dry_run:
            cfg_file = exe.working_dir / "dry-run-configuration.json"
            # a file in the user's working directory: redacted like configuration.json (the kernel's dry-run
            # execution writes nothing anywhere, so it needs no secret either)
            cfg_file.write_text(redacted_configuration_json(exe.configuration))
            env.update({DRY_RUN_ENV: "true", CONFIGURATION_ENV: str(cfg_file)})
        kernel = kernel_name or (nb.metadata.get("kernelspec") or {}).get("name") or "python3"
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name=kernel,
            resources={"metadata": {"path": str(nb_path.parent)}},
        )
        error: BaseException | None = None
        exe.execution_start()
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)  # the kernel inherits this process's environment
        try:
            client.execute()
        except Exception as exc:  # CellExecutionError, timeouts, a dead kernel
            error = exc
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            # executed, or partially; secret parameters do not reach the file that is uploaded
            nbformat.write(publishable(nb, dict(parameters or {})), out_path)  # type: ignore[no-untyped-call]
            out_path.seal()  # written whole by us: complete even when a cell failed
        from deriva_ml.core.errors import StatusConflict

        # the notebook's own handle (or another process) may have recorded the end first: that status stands
        with contextlib.suppress(StatusConflict):
            exe.execution_stop(error)
        if not dry_run:
            exe.upload_execution_outputs()
        return NotebookResult(
            str(exe.execution_rid),
            exe.status,
            str(out_path),
            "" if error is None else f"{type(error).__name__}: {_first_lines(str(error))}",
            dry_run,
        )
    finally:
        if isinstance(conn, DerivaMLConnection):
            ml.close()


def _first_lines(text: str, n: int = 12) -> str:
    import re

    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)  # the kernel's traceback is ANSI-coloured
    return "\n".join(plain.strip().splitlines()[-n:])


# ---------------------------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Execute a notebook as a recorded DerivaML execution. Extra arguments are Hydra overrides "
        "of the project's configs (deriva_ml=..., datasets=..., assets=..., workflow=...).",
    )
    p.add_argument("notebook", help="the .ipynb file")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"))
    p.add_argument("--host", default=None, help="shortcut for deriva_ml.hostname=HOST")
    p.add_argument("--catalog", default=None, help="shortcut for deriva_ml.catalog_id=ID")
    p.add_argument("--config-module", action="append", default=[], metavar="MODULE")
    p.add_argument(
        "--workflow-type", default=None, help="Workflow_Type term (default: the workflow config's, or Analysis)"
    )
    p.add_argument("--description", default=None)
    p.add_argument("--kernel", default=None, help="kernel name (default: the notebook's kernelspec, else python3)")
    p.add_argument("--timeout", type=int, default=None, help="seconds per cell (default: no limit)")
    p.add_argument(
        "--dry-run", action="store_true", help="run the notebook but write nothing to the catalog or object store"
    )
    p.add_argument("--verbose", "-v", action="count", default=0, help="log INFO (-v) or DEBUG (-vv); default WARNING")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    import logging

    from deriva_ml.execution.runner import _import_config_modules, console_log_level, discover_config_modules

    raw = list(sys.argv[1:] if argv is None else argv)
    args, overrides = _parser().parse_known_args(raw)
    # an application entry point: it configures logging (the library never does)
    logging.basicConfig(
        level=console_log_level(args.verbose, os.environ),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    names, search = discover_config_modules(Path.cwd(), args.config_module)
    _import_config_modules(names, search)
    if args.host:
        overrides.append(f"deriva_ml.hostname={args.host}")
    if args.catalog:
        overrides.append(f"deriva_ml.catalog_id={args.catalog}")
    params = {k: parse_value(v) for k, v in args.parameter}
    result = run_notebook(
        args.notebook,
        params,
        overrides,
        workflow_type=args.workflow_type,
        description=args.description,
        kernel_name=args.kernel,
        timeout=args.timeout,
        argv=(PROG, *raw),
        dry_run=args.dry_run,
    )
    if result.dry_run:
        print(
            f"{PROG}: DRY RUN - nothing was written to the catalog or object store; notebook "
            f"{result.status.value}; executed notebook: {result.output_notebook}"
        )
    else:
        print(
            f"{PROG}: execution {result.execution_rid} {result.status.value}; "
            f"executed notebook: {result.output_notebook}"
        )
    if result.error:
        print(f"{PROG}: notebook failed: {result.error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from deriva_ml.execution.notebook_runner import main as _main

    sys.exit(_main())
