"""``deriva-ml replay RID``: re-run an execution from its recorded code and inputs; report what reproduced.

Exit codes: 0 every output reproduced (same MD5), 1 not reproduced (or the replay was refused: the reason
is printed), 2 usage, 3 unknown RID or catalog. ``--dry-run`` prints the plan and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_parser(sub: Any, target: Any) -> None:
    r = sub.add_parser("replay", help="re-run an execution from its recorded commit and inputs; compare outputs")
    target(r)
    r.add_argument("rid", help="the execution's RID")
    r.add_argument(
        "--dry-run", action="store_true", help="show the plan (commit, files, inputs, command); write nothing"
    )
    r.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one recorded parameter (script: --KEY VALUE; Hydra: KEY=VALUE; notebook: -p KEY VALUE)",
    )
    r.add_argument(
        "--repo",
        action="append",
        default=[],
        metavar="PATH",
        help="a local clone holding the recorded commit (default: the current directory's repository)",
    )
    r.add_argument("--keep-checkout", action="store_true", help="keep a copy of the checked-out code")
    r.add_argument("--json", action="store_true", help="print the plan or the report as JSON")


def run(args: argparse.Namespace, ml: Any) -> int:
    import os

    from deriva_ml.replay.plan import parse_override, render_plan, render_report
    from deriva_ml.replay.run import plan_for, run_replay

    for o in args.override:
        parse_override(o)  # a malformed override is a usage error before anything runs
    catalog, store = ml.ports.catalog, ml.ports.store
    if args.dry_run:
        plan = plan_for(catalog, store, args.rid, overrides=args.override, repositories=args.repo)
        if args.json:
            print(json.dumps(plan.to_json(), indent=2, default=str))
        else:
            print("\n".join(render_plan(plan)))
        return 0
    env = dict(os.environ)
    if args.home:  # the replayed code opens its catalog under the same home
        env["DERIVA_ML_HOME"] = os.path.abspath(args.home)
    report = run_replay(
        catalog,
        store,
        args.rid,
        overrides=args.override,
        repositories=args.repo,
        env=env,
        echo=lambda line: print(line, file=sys.stderr),
        keep_checkout=args.keep_checkout,
    )
    if args.json:
        print(json.dumps(report.to_json(), indent=2, default=str))
    else:
        print("\n".join(render_report(report)))
    return 0 if report.reproduced else 1
