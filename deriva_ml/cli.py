"""``deriva-ml``: the command line.

- ``deriva-ml demo`` — a complete execution on an embedded catalog (the README's main command);
- ``deriva-ml show RID [--json]`` — an execution's record, inputs, outputs and children;
- ``deriva-ml executions [--status S]`` — list executions;
- ``deriva-ml abort-stale [--older-than-hours H]`` — mark executions whose process died as Aborted;
- ``deriva-ml cache stats|verify|clear [--older-than-days D]``;
- ``deriva-ml sync --catalog NAME --to-host HOST --to-catalog ID`` — offline replay into a live catalog.

``--host`` (default ``local``) and ``--catalog`` select the catalog.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import timedelta
from typing import Any

from deriva_ml.core.codec import to_jsonable


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
    s.add_argument("rid")
    s.add_argument("--json", action="store_true")

    e = sub.add_parser("executions", help="list executions")
    target(e)
    e.add_argument("--status", default=None)
    e.add_argument("--json", action="store_true")

    a = sub.add_parser("abort-stale", help="mark executions whose process died as Aborted")
    target(a)
    a.add_argument("--older-than-hours", type=float, default=None)

    y = sub.add_parser("sync", help="replay an embedded catalog's new records into a live catalog")
    y.add_argument("--catalog", required=True, help="the embedded catalog's name")
    y.add_argument("--home", default=None, help="deriva-ml home (default $DERIVA_ML_HOME or ~/.deriva-ml)")
    y.add_argument("--to-host", required=True, help="the live DERIVA server")
    y.add_argument("--to-catalog", required=True, help="the live catalog id")

    c = sub.add_parser("cache", help="inspect or clean the asset cache")
    target(c)
    c.add_argument("action", choices=["stats", "verify", "clear"])
    c.add_argument("--older-than-days", type=float, default=None)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    level = logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "demo":
        from deriva_ml.demo import run_demo

        summary = run_demo(home=args.home, catalog=args.catalog, say=(lambda _m: None) if args.json else print)
        if args.json:
            print(json.dumps(summary, indent=2, default=str))
        return 0 if summary["status"] == "Completed" else 1

    from deriva_ml import DerivaML

    if args.command == "sync":
        from deriva_ml.sync import sync

        source = DerivaML("local", args.catalog, home=args.home)
        target = DerivaML(args.to_host, args.to_catalog, home=args.home)
        report = sync(source, target)  # a bar of entries on a terminal only (docs/progress.md)
        print(
            f"synced {report.entries_applied} journal entries and {report.objects_copied} files "
            f"({report.bytes_copied:,} bytes) into {args.to_host} catalog {args.to_catalog}"
            + (" (completed an interrupted sync)" if report.recovered else "")
        )
        return 0

    ml = DerivaML(args.host, args.catalog, home=args.home)
    try:
        if args.command == "show":
            return _show(ml, args.rid, args.json)
        if args.command == "executions":
            records = ml.find_executions(args.status)
            if args.json:
                print(json.dumps([to_jsonable(r) for r in records], indent=2))
            else:
                for r in records:
                    print(f"{r.rid:12} {r.status.value:12} {r.duration_text or '':18} {r.description}")
            return 0
        if args.command == "abort-stale":
            older = timedelta(hours=args.older_than_hours) if args.older_than_hours is not None else None
            for r in ml.abort_stale_executions(older):
                print(f"aborted {r.rid}: {r.status_detail}")
            return 0
        if args.command == "cache":
            if args.action == "stats":
                print(ml.cache_stats())
            elif args.action == "verify":
                print(ml.verify_cache())
            else:
                print(ml.clear_cache(args.older_than_days))
            return 0
    finally:
        ml.close()
    return 2


def _show(ml: Any, rid: str, as_json: bool) -> int:
    record = ml.lookup_execution(rid)
    children = ml.list_nested_executions(rid)
    info = {"execution": to_jsonable(record), "children": [to_jsonable(c) for c in children]}
    if as_json:
        print(json.dumps(info, indent=2))
    else:
        print(f"{record.rid}  {record.status.value}  {record.duration_text or ''}  {record.description}")
        print(f"  detail: {record.status_detail}")
        for c in children:
            print(f"  child {c.rid} {c.status.value} {c.description}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
