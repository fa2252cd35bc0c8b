"""The runner's command line: argparse, config-module discovery, logging levels, ``--info``, multirun presets,
``--finalize-sweep`` and :func:`main` (which hands each job to Hydra)."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from deriva_ml.core.status import Status
from deriva_ml.execution._hydra_configs import (
    DEFAULT_CONFIG_NAME,
    MULTIRUN_GROUP,
    MultirunSpec,
    multirun_spec_from_node,
    register_fallbacks,
)
from deriva_ml.execution._sweep import SweepDir
from deriva_ml.execution.runner._run import PROG

_CALLBACK = "deriva_ml.execution._sweep.SweepFinalizer"
#: Console log level of ``deriva-ml-run`` (``WARNING`` unless ``-v``/``-vv``): DEBUG, INFO, WARNING, ERROR.
LOG_LEVEL_ENV = "DERIVA_ML_LOG_LEVEL"


# ---------------------------------------------------------------------------------------------- CLI


def _import_config_modules(names: Sequence[str], search: Sequence[Path]) -> list[str]:
    """Import each config module (and every submodule of a package) so its ``store(...)`` calls register."""
    for d in reversed([str(p) for p in search]):
        if d not in sys.path:
            sys.path.insert(0, d)
    loaded: list[str] = []
    for name in names:
        module = importlib.import_module(name)
        loaded.append(name)
        if hasattr(module, "__path__"):
            for info in sorted(pkgutil.walk_packages(module.__path__, prefix=f"{name}."), key=lambda m: m.name):
                importlib.import_module(info.name)
                loaded.append(info.name)
    return loaded


def discover_config_modules(cwd: Path, explicit: Sequence[str]) -> tuple[list[str], list[Path]]:
    """Which config modules to import: ``--config-module``, else ``$DERIVA_ML_CONFIG_MODULE``, else a
    ``configs`` package in the current directory or in ``src/``. Returns the names and sys.path entries."""
    search = [cwd]
    if (cwd / "src").is_dir():
        search.append(cwd / "src")
    if explicit:
        return list(explicit), search
    env = os.environ.get("DERIVA_ML_CONFIG_MODULE", "")
    if env.strip():
        return [m.strip() for m in env.split(",") if m.strip()], search
    for d in search:
        if (d / "configs" / "__init__.py").is_file():
            return ["configs"], [d]
    return [], search


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        add_help=False,
        description="Run a model with DerivaML provenance. Anything not listed here is passed to Hydra "
        "(overrides such as workflow=NAME, +experiment=NAME, +multirun=NAME, -m, --config-dir, hydra/launcher=joblib).",
    )
    p.add_argument(
        "--config-module",
        action="append",
        default=[],
        metavar="MODULE",
        help="module/package whose store(...) calls define the configs "
        "(repeatable; default: ./configs or ./src/configs)",
    )
    p.add_argument("--config-name", "-cn", default=None, help=f"top-level config (default {DEFAULT_CONFIG_NAME})")
    p.add_argument("--info", action="store_true", help="list config groups, their options and the multirun presets")
    p.add_argument("--host", default=None, help="shortcut for deriva_ml.hostname=HOST ('local' = embedded catalog)")
    p.add_argument("--catalog", default=None, help="shortcut for deriva_ml.catalog_id=ID")
    p.add_argument(
        "--finalize-sweep",
        default=None,
        metavar="SWEEP_DIR",
        help="(re)derive the parent status of a sweep whose launching process died, then exit",
    )
    p.add_argument(
        "--verbose",
        "-v",
        action="count",
        default=0,
        help=f"log INFO (-v) or DEBUG (-vv) to the console; default WARNING (also ${LOG_LEVEL_ENV}=INFO...). "
        "The job's log file always has INFO.",
    )
    p.add_argument("--help", "-h", action="store_true", help="this help (Hydra's own: --hydra-help)")
    return p


def console_log_level(verbose: int, env: Mapping[str, str], hydra_args: Sequence[str] = ()) -> int:
    """The console's log level: ``-vv`` DEBUG, ``-v`` INFO, else ``$DERIVA_ML_LOG_LEVEL``, else WARNING
    (``hydra.verbose=...`` on the command line means DEBUG, so that what it enables is shown)."""
    if verbose >= 2 or any(a.startswith("hydra.verbose=") for a in hydra_args):
        return logging.DEBUG
    if verbose == 1:
        return logging.INFO
    name = env.get(LOG_LEVEL_ENV, "").strip().upper()
    if name:
        level = logging.getLevelName(name)
        if not isinstance(level, int):
            raise SystemExit(f"{PROG}: ${LOG_LEVEL_ENV}={name!r} is not a log level (DEBUG, INFO, WARNING, ERROR)")
        return level
    return logging.WARNING


def logging_overrides(level: int, hydra_args: Sequence[str]) -> list[str]:
    """Hydra overrides that set the console handlers of Hydra's job and launcher logging to ``level``.

    Hydra configures logging for the app (the console and ``<job>/<task>.log`` at INFO); the runner only
    raises the console's threshold, so the log file keeps every INFO event. A ``hydra/job_logging=...``
    or ``hydra/hydra_logging=...`` of the user's is left alone.
    """
    name = logging.getLevelName(level)
    out = []
    if not any(a.startswith(("hydra/job_logging=", "hydra.job_logging")) for a in hydra_args):
        out.append(f"hydra.job_logging.handlers.console.level={name}")
        if level <= logging.DEBUG:
            out += ["hydra.job_logging.root.level=DEBUG", "hydra.job_logging.handlers.file.level=DEBUG"]
    if not any(a.startswith(("hydra/hydra_logging=", "hydra.hydra_logging")) for a in hydra_args):
        out.append(f"hydra.hydra_logging.handlers.console.level={name}")
    return [f"++{o}" for o in out]


def _configure_console_logging(level: int) -> None:
    """Logging of the runner's own commands that run outside Hydra (``--finalize-sweep``)."""
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def render_info(config_name: str = DEFAULT_CONFIG_NAME) -> str:
    """The store's groups, their options (default marked ``*``) and the multirun presets."""
    from hydra_zen import store

    groups: dict[str, list[str]] = {}
    presets: list[MultirunSpec] = []
    primaries: list[str] = []
    for entry in store:
        group, name = entry["group"], entry["name"]
        if group is None:
            primaries.append(name)
        elif group == MULTIRUN_GROUP:
            presets.append(multirun_spec_from_node(entry["node"]))
        else:
            groups.setdefault(group, []).append(name)
    defaults: dict[str, str] = {}
    try:
        from omegaconf import OmegaConf

        top = OmegaConf.create(store.get_entry(None, config_name)["node"])
        for d in OmegaConf.to_container(top).get("defaults") or []:  # type: ignore[union-attr]
            if isinstance(d, Mapping):
                for k, v in d.items():
                    defaults[str(k).replace("optional ", "").replace("override ", "").lstrip("/")] = str(v)
    except KeyError:
        pass
    lines = [f"Top-level configs: {', '.join(sorted(primaries)) or '(none)'} (running {config_name})", ""]
    lines.append("Config groups (* = default):")
    for group in sorted(groups):
        opts = [f"{n}*" if defaults.get(group) == n else n for n in sorted(groups[group])]
        lines.append(f"  {group}: {', '.join(opts)}")
    lines.append("")
    lines.append(f"Multirun presets ({PROG} +multirun=NAME):")
    if not presets:
        lines.append("  (none)")
    for spec in sorted(presets, key=lambda s: s.name):
        first = next((ln.strip("# ").strip() for ln in spec.description.splitlines() if ln.strip()), "")
        lines.append(f"  {spec.name}: {' '.join(spec.overrides)}" + (f"  -- {first}" if first else ""))
    return "\n".join(lines)


def expand_multirun(args: Sequence[str], lookup: Callable[[str], MultirunSpec | None]) -> list[str]:
    """``+multirun=NAME`` → ``--multirun`` + the preset's overrides + the rest (the user's come last, so they win).

    Pure apart from ``lookup``. ``+multirun=NAME`` itself is kept so that the preset's description reaches
    every job and ``config_choices`` records it.
    """
    names = [a.split("=", 1)[1] for a in args if a.startswith(f"+{MULTIRUN_GROUP}=")]
    if not names:
        return list(args)
    if len(names) > 1 or "," in names[0]:
        raise SystemExit(f"{PROG}: give one +{MULTIRUN_GROUP}=NAME (got {names})")
    spec = lookup(names[0])
    if spec is None:
        raise SystemExit(f"{PROG}: no multirun preset {names[0]!r}; see `{PROG} --info`")
    out = [] if ("-m" in args or "--multirun" in args) else ["--multirun"]
    return [*out, *spec.overrides, *args]


def _lookup_preset(name: str) -> MultirunSpec | None:
    from hydra_zen import store

    try:
        return multirun_spec_from_node(store.get_entry(MULTIRUN_GROUP, name)["node"])
    except KeyError:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``deriva-ml-run``."""
    args, rest = _parser().parse_known_args(list(sys.argv[1:] if argv is None else argv))
    if args.help:
        _parser().print_help()
        return 0
    level = console_log_level(args.verbose, os.environ, rest)
    if args.finalize_sweep:
        return _finalize_command(Path(args.finalize_sweep), level)
    rest = ["--help" if a == "--hydra-help" else a for a in rest]
    names, search = discover_config_modules(Path.cwd(), args.config_module)
    _import_config_modules(names, search)
    config_name = args.config_name or DEFAULT_CONFIG_NAME
    from hydra_zen import store

    builtin_top = (None, config_name) not in store and config_name == DEFAULT_CONFIG_NAME
    register_fallbacks()
    if args.info:
        print(render_info(config_name))
        return 0
    if builtin_top and "--help" not in rest:
        problem = missing_defaults(store, rest, names, search)
        if problem:
            print(problem, file=sys.stderr)
            return USAGE_ERROR
    store.add_to_hydra_store(overwrite_ok=True)
    if args.host:
        rest.append(f"deriva_ml.hostname={args.host}")
    if args.catalog:
        rest.append(f"deriva_ml.catalog_id={args.catalog}")
    hydra_args = expand_multirun(rest, _lookup_preset)
    hydra_args.append(f"++hydra.callbacks.deriva_ml_sweep._target_={_CALLBACK}")
    hydra_args += logging_overrides(level, hydra_args)
    import hydra

    from deriva_ml.execution.runner import _hydra_task

    saved = sys.argv, warnings.showwarning
    sys.argv = [PROG, *hydra_args]
    warnings.showwarning = _source_warnings_once(warnings.showwarning)
    try:
        hydra.main(config_path=None, config_name=config_name, version_base="1.3")(_hydra_task)()
    finally:
        sys.argv, warnings.showwarning = saved
    return 0


#: Exit status of ``deriva-ml-run`` for a command line or configuration it cannot run (argparse's too).
USAGE_ERROR = 2

#: The groups of the built-in top-level config that need an option of the project's, and how to give one.
_REQUIRED_GROUPS = (
    (
        "workflow",
        "default_workflow",
        'store(builds(Workflow, name="Training", workflow_type="Training", populate_full_signature=True), '
        'group="workflow", name="default_workflow")',
    ),
    (
        "model_config",
        "default_model",
        'store(builds(train, populate_full_signature=True, zen_partial=True), group="model_config", '
        'name="default_model")',
    ),
)


def missing_defaults(store: Any, args: Sequence[str], modules: Sequence[str], search: Sequence[Path]) -> str | None:
    """What to configure when the built-in top-level config cannot be composed because the project has no
    default ``workflow`` / ``model_config`` option (None when nothing is missing, or when the command line
    may provide it: a ``GROUP=...`` selection, a ``+preset=...`` that may set it, YAML config dirs)."""
    if any(a.startswith(("--config-dir", "-cd", "--config-path", "-cp", "hydra.searchpath")) for a in args):
        return None
    if any(a.startswith("+") and "=" in a and "." not in a.split("=", 1)[0] for a in args):
        return None  # +experiment=NAME / +multirun=NAME may select the groups
    lines: list[str] = []
    for group, default, example in _REQUIRED_GROUPS:
        if (group, default) in store:
            continue
        if any(a.split("=", 1)[0].lstrip("+~") == group for a in args if "=" in a):
            continue
        options = sorted(e["name"] for e in store if e["group"] == group)
        pick = f" or pick one with {group}=NAME ({', '.join(options)})" if options else ""
        lines.append(f"  - no '{group}' option named '{default}': define one{pick}, e.g.\n      {example}")
    if not lines:
        return None
    where = (
        f"config module(s) {', '.join(modules)}"
        if modules
        else "no config module was found (no ./configs or ./src/configs package, no --config-module, "
        "no $DERIVA_ML_CONFIG_MODULE; looked in " + ", ".join(str(p) for p in search) + ")"
    )
    return (
        f"{PROG}: nothing to run: the configuration has no default workflow or model.\n"
        + "\n".join(lines)
        + f"\n  ({where}; see `{PROG} --info` and docs/runner.md)"
    )


def _finalize_command(path: Path, level: int) -> int:
    """``--finalize-sweep DIR``: 0 when the parent ends Completed, 1 when it ends Failed/Aborted or the sweep
    has no parent, :data:`USAGE_ERROR` when DIR is not a sweep directory of this runner."""
    from deriva_ml.execution._sweep import finalize_sweep, render_sweep_result

    sweep = SweepDir(path)
    if not sweep.path.is_dir():
        print(f"{PROG}: --finalize-sweep {path}: no such directory (give a sweep's hydra.sweep.dir)", file=sys.stderr)
        return USAGE_ERROR
    if not sweep.state_dir.is_dir():
        print(
            f"{PROG}: --finalize-sweep {path}: not a sweep directory of {PROG} (it has no {sweep.state_dir.name}/; "
            f"give the hydra.sweep.dir of a multirun)",
            file=sys.stderr,
        )
        return USAGE_ERROR
    _configure_console_logging(level)
    result = finalize_sweep(sweep)
    print(render_sweep_result(result))
    if result.parent_rid is None:
        print(f"{PROG}: --finalize-sweep {path}: no job of this sweep created a parent execution", file=sys.stderr)
        return 1
    return 1 if result.parent_status in (Status.failed, Status.aborted) else 0


def _source_warnings_once(show: Callable[..., None]) -> Callable[..., None]:
    """``warnings.showwarning`` that shows each distinct SourceWarning once per command (every job of a
    sweep detects the same source; a ``"once"`` filter does not survive the library's
    ``catch_warnings``)."""
    from deriva_ml.source import SourceWarning

    seen: set[str] = set()

    def showwarning(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, SourceWarning):
            if str(message) in seen:
                return
            seen.add(str(message))
        show(message, category, *args, **kwargs)

    return showwarning
