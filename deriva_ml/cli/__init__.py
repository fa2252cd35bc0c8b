"""``deriva-ml``: the command line.

- ``deriva-ml demo`` — a complete execution on an embedded catalog (the README's main command);
- ``deriva-ml show RID [--json]`` — an execution's record, inputs, outputs and children;
- ``deriva-ml executions [--status S] [--workflow W] [--since T]`` — list executions;
- ``deriva-ml abort-stale [--older-than-hours H]`` — mark executions whose process died as Aborted;
- ``deriva-ml cache stats|verify|clear [--older-than-days D]``;
- ``deriva-ml replay RID [--dry-run] [--override K=V]`` — re-run an execution, compare its outputs by MD5;
- ``deriva-ml lineage RID [--depth N] [--format dot|svg|mermaid] [-o PATH]`` — the provenance graph;
- ``deriva-ml metrics RID [--children] [--sort NAME] [--json]`` — metrics, or a sweep's children side by side;
- ``deriva-ml diff A B [--json]`` — what differs between two executions (exit 0 same, 4 differ);
- ``deriva-ml export RID --format ro-crate|prov-json [-o PATH]`` — standard provenance exports;
- ``deriva-ml sync --catalog NAME --to-host HOST --to-catalog ID`` — offline replay into a live catalog.

``--host`` (default ``local``) and ``--catalog`` select the catalog. Commands other than ``demo`` never create
a catalog: an unknown one is an error listing those that exist. Errors print one line on stderr and exit
with a documented code (docs/cli.md); ``-v`` adds the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import traceback
from datetime import UTC, datetime, timedelta
from typing import Any

from deriva_ml.core.codec import to_jsonable
from deriva_ml.core.convert import json_text


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deriva-ml", description="Provenance for ML work on a DERIVA catalog.")
    p.add_argument("-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)")
    sub = p.add_subparsers(dest="command", required=True)

    def target(sp: argparse.ArgumentParser, default_catalog: str = "default") -> None:
        sp.add_argument("--host", default="local", help="DERIVA host name, or 'local' for the embedded catalog")
        sp.add_argument("--catalog", default=default_catalog, help="catalog id (live) or name (embedded)")
        sp.add_argument("--home", default=None, help="deriva-ml home (default $DERIVA_ML_HOME or ~/.deriva-ml)")

    d = sub.add_parser("demo", help="run a complete demo execution on an embedded catalog")
    d.add_argument("--home", default=None, help="deriva-ml home (default $DERIVA_ML_HOME or ~/.deriva-ml)")
    d.add_argument("--catalog", default="demo", help="embedded catalog name (default: demo)")
    d.add_argument("--json", action="store_true", help="print the summary as JSON")

    s = sub.add_parser("show", help="show an execution")
    target(s)
    s.add_argument("rid", help="the execution's RID")
    s.add_argument("--json", action="store_true", help="print JSON (for scripts)")

    e = sub.add_parser("executions", help="list executions")
    target(e)
    e.add_argument("--status", default=None, help="only executions with this status (e.g. Completed, Failed)")
    e.add_argument("--workflow", default=None, help="only executions of this workflow (name or RID)")
    e.add_argument("--since", default=None, help="only executions created since an ISO date/time or an age (3d, 12h)")
    e.add_argument("--json", action="store_true")

    a = sub.add_parser("abort-stale", help="mark executions whose process died as Aborted")
    target(a)
    a.add_argument("--older-than-hours", type=float, default=None)

    y = sub.add_parser("sync", help="replay an embedded catalog's new records into a live catalog")
    y.add_argument("--catalog", required=True, help="the embedded catalog's name")
    y.add_argument("--home", default=None, help="deriva-ml home (default $DERIVA_ML_HOME or ~/.deriva-ml)")
    y.add_argument("--to-host", required=True, help="the live DERIVA server")
    y.add_argument("--to-catalog", required=True, help="the live catalog id")

    from deriva_ml.cli._metrics import register as register_metrics  # --- metrics (branch metrics)

    register_metrics(sub, target)

    c = sub.add_parser("cache", help="inspect or clean the asset cache")
    target(c)
    c.add_argument("action", choices=["stats", "verify", "clear"])
    c.add_argument("--older-than-days", type=float, default=None)
    from deriva_ml.cli import _lineage, _replay  # --- replay, lineage (branch replay)

    _replay.add_parser(sub, target)
    _lineage.add_parser(sub, target)
    # --- provenance (branch prov)
    from deriva_ml.cli import _diff, _export

    _diff.register(sub, target)
    _export.register(sub, target)
    for sp in sub.choices.values():  # -v also after the subcommand (``deriva-ml show RID -v``)
        sp.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="log more, show tracebacks")
    return p


#: Exit codes (documented in docs/cli.md).
EXIT_OK = 0
EXIT_FAILURE = 1  # the command ran and failed: catalog refused, server unreachable, execution not Completed
EXIT_USAGE = 2  # the command line is wrong: bad option, bad RID syntax, bad --status value
EXIT_NOT_FOUND = 3  # something named does not exist: catalog, RID, version
EXIT_INTERRUPTED = 130


def exit_code(exc: BaseException) -> int:
    """The exit code for an exception that ended a command."""
    from deriva_ml.core.errors import NotFound, ValidationError

    if isinstance(exc, NotFound):
        return EXIT_NOT_FOUND
    if isinstance(exc, ValidationError):
        return EXIT_USAGE
    return EXIT_FAILURE


def main(argv: list[str] | None = None) -> int:
    """The ``deriva-ml`` entry point: one line on stderr and a documented exit code for every error."""
    args = _parser().parse_args(argv)  # usage errors: argparse prints usage and exits 2
    level = logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # urllib3's per-retry warnings: the one error line says what happened
        logging.getLogger("urllib3").setLevel(logging.ERROR)
    try:
        code = _run(args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # the reader went away (``deriva-ml executions | head``): not an error, and nothing more to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        print("deriva-ml: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # the one place where every error becomes a line and a code
        from deriva_ml.core.errors import DerivaMLException

        if args.verbose:
            traceback.print_exc()
        message = str(exc) if isinstance(exc, DerivaMLException) else f"{type(exc).__name__}: {exc}"
        first = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
        hint = "" if args.verbose else " (-v for details)"
        print(f"deriva-ml {args.command}: {first}{hint}", file=sys.stderr)
        return exit_code(exc)


def _open(host: str, catalog: str, home: str | None) -> Any:
    """A read-only open: an embedded catalog that does not exist is an error, never created."""
    from deriva_ml import DerivaML
    from deriva_ml._ml import LOCAL_HOST
    from deriva_ml.core.errors import NotFound, UnknownCatalog

    try:
        return DerivaML(host, catalog, home=home, create=False)
    except UnknownCatalog:
        raise
    except NotFound as exc:  # ERMrest answers 404 for the catalog's model: the catalog does not exist
        if host == LOCAL_HOST:
            raise
        raise UnknownCatalog(catalog, None, where=f"on {host}") from exc


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from deriva_ml.demo import run_demo

        summary = run_demo(home=args.home, catalog=args.catalog, say=(lambda _m: None) if args.json else print)
        if args.json:
            print(json_text(summary, indent=2, ascii_only=True))
        return EXIT_OK if summary["status"] == "Completed" else EXIT_FAILURE

    if args.command == "cache":
        return _cache(args)

    # --- provenance (branch prov)
    if args.command == "diff":
        from deriva_ml.cli import _diff

        return _diff.run(args, _open)
    if args.command == "export":
        from deriva_ml.cli import _export

        return _export.run(args, _open)

    if args.command == "sync":
        from deriva_ml import DerivaML
        from deriva_ml.sync import sync

        source = _open("local", args.catalog, args.home)
        try:
            target = DerivaML(args.to_host, args.to_catalog, home=args.home)
            report = sync(source, target)  # a bar of entries on a terminal only (docs/progress.md)
        finally:
            source.close()
        print(
            f"synced {report.entries_applied} journal entries and {report.objects_copied} files "
            f"({report.bytes_copied:,} bytes) into {args.to_host} catalog {args.to_catalog}"
            + (" (completed an interrupted sync)" if report.recovered else "")
        )
        return EXIT_OK

    if args.command == "executions":
        status = _status_arg(args.status)
        since = _since_arg(args.since)
    if args.command in ("show", "metrics", "replay", "lineage"):
        from deriva_ml.core.rid import parse_rid

        parse_rid(args.rid, "RID")  # a malformed RID is a usage error before anything is opened
    ml = _open(args.host, args.catalog, args.home)
    try:
        if args.command == "show":
            from deriva_ml.cli._show import gather, render

            info = gather(ml, args.rid)
            if args.json:
                print(json_text(info, indent=2, ascii_only=True))
            else:
                print("\n".join(render(info)))
            return EXIT_OK
        if args.command in ("replay", "lineage"):  # --- replay, lineage (branch replay)
            from deriva_ml.cli import _lineage, _replay

            return int((_replay if args.command == "replay" else _lineage).run(args, ml))
        if args.command == "executions":
            return _executions(ml, status, args.workflow, since, args.json)
        if args.command == "metrics":  # --- metrics (branch metrics)
            from deriva_ml.cli import _metrics

            return _metrics.run(ml, args)
        if args.command == "abort-stale":
            older = timedelta(hours=args.older_than_hours) if args.older_than_hours is not None else None
            for r in ml.abort_stale_executions(older):
                print(f"aborted {r.rid}: {r.status_detail}")
            return EXIT_OK
    finally:
        ml.close()
    return EXIT_USAGE  # pragma: no cover - argparse only accepts the commands above


def _status_arg(value: str | None) -> Any:
    from deriva_ml.core.status import Status

    return None if value is None else Status.parse(value)


def _since_arg(value: str | None) -> datetime | None:
    """``--since``: an ISO date/time (UTC when no zone is given) or a relative age such as ``3d``, ``12h``."""
    from deriva_ml.core.errors import ValidationError

    if value is None:
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([mhdw])", value.strip())
    if m:
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m.group(2)]
        return datetime.now(UTC) - timedelta(**{unit: float(m.group(1))})
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(
            f"--since={value!r} is not a date: give an ISO date or time such as '2026-11-30' or "
            f"'2026-11-30T08:00', or an age such as '30m', '12h', '3d', '2w'"
        ) from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _executions(ml: Any, status: Any, workflow: str | None, since: datetime | None, as_json: bool) -> int:
    """List executions: one query for the rows (filtered by status in the catalog), one for workflow names."""
    from deriva_ml.core.definitions import ML_SCHEMA
    from deriva_ml.core.execution_rows import parse_time as _parse_time
    from deriva_ml.core.execution_rows import record_from_row as _record_from_row

    where = {"Status": status.value} if status is not None else None
    rows = ml.catalog.query(ML_SCHEMA, "Execution", where, order_by=["RID"])
    wf_rids = sorted({r["Workflow"] for r in rows if r.get("Workflow")})
    workflows = (
        {w["RID"]: w for w in ml.catalog.query(ML_SCHEMA, "Workflow", {"RID": wf_rids}, columns=["RID", "Name"])}
        if wf_rids
        else {}
    )
    listed = []
    for r in rows:
        wf = workflows.get(r.get("Workflow") or "", {})
        if workflow is not None and workflow not in (r.get("Workflow"), wf.get("Name")):
            continue
        created = _parse_time(r.get("RCT"))
        if since is not None and (created is None or created < since):
            continue
        listed.append((_record_from_row(r), wf.get("Name") or "", created))
    if as_json:
        print(
            json_text(
                [{**to_jsonable(rec), "workflow_name": name, "created": c} for rec, name, c in listed],
                indent=2,
                ascii_only=True,
            )
        )
        return EXIT_OK
    header = ("RID", "STATUS", "CREATED", "DURATION", "WORKFLOW", "DESCRIPTION")
    table = [
        (
            str(rec.rid),
            rec.status.value,
            c.strftime("%Y-%m-%d %H:%M") if c else "",
            (rec.duration_text or "").split(".")[0],
            name,
            rec.description.splitlines()[0] if rec.description else "",
        )
        for rec, name, c in listed
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) if table else len(h) for i, h in enumerate(header)]
    for row in [header, *table]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths[:-1], strict=True)) + "  " + row[-1])
    if not table:
        print("(no executions match)", file=sys.stderr)
    return EXIT_OK


def _cache(args: argparse.Namespace) -> int:
    """The cache belongs to the home, not to a catalog: no catalog is opened, and ``stats`` creates nothing."""
    from deriva_ml._ml import deriva_ml_home

    cache_dir = deriva_ml_home(args.home) / "cache"
    if args.action == "stats" and not cache_dir.exists():
        print(f"CacheStats(cache_dir={str(cache_dir)!r}, entries=0, bytes=0) (no cache yet)")
        return EXIT_OK
    from deriva_ml.cache import AssetCache

    cache = AssetCache(cache_dir)
    try:
        if args.action == "stats":
            print(cache.stats())
        elif args.action == "verify":
            print(cache.verify())
        else:
            print(cache.clear(args.older_than_days))
    finally:
        cache.close()
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
