"""``deriva-ml diff A B [--json] [--recurse]``: what differs between two executions, from their canonical
provenance records (deriva_ml.provenance). B may live in another catalog (``--b-host``/``--b-catalog``):
records are compared by content, so an execution and its synced copy compare equal.

Exit codes: 0 same content, 4 the contents differ (docs/cli.md), errors as for every command.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

#: Exit code when the two executions' contents differ (0: same; 1-3: the usual errors).
EXIT_DIFFER = 4


def register(sub: Any, target: Any) -> None:
    d = sub.add_parser(
        "diff", help="what differs between two executions (code, inputs, configuration, environment, outputs)"
    )
    target(d)
    d.add_argument("a", help="the first execution's RID")
    d.add_argument("b", help="the second execution's RID")
    d.add_argument("--b-host", default=None, help="B's host when B is in another catalog (default: --host)")
    d.add_argument("--b-catalog", default=None, help="B's catalog when B is in another catalog (default: --catalog)")
    d.add_argument("--recurse", action="store_true", help="compare nested children too (sweeps)")
    d.add_argument("--json", action="store_true", help="print the differences as JSON")


def document(ml: Any, rid: str, recurse: bool) -> dict[str, Any]:
    """The canonical provenance document of execution ``rid`` in ``ml``'s catalog."""
    from deriva_ml.provenance import canonical_record, gather_execution

    return canonical_record(gather_execution(ml.ports, ml._schema, rid, recurse=recurse))


def run(args: argparse.Namespace, open_ml: Any) -> int:
    from deriva_ml.core.rid import parse_rid
    from deriva_ml.provenance.diff import diff_records

    parse_rid(args.a, "RID A")
    parse_rid(args.b, "RID B")
    ml_a = open_ml(args.host, args.catalog, args.home)
    try:
        doc_a = document(ml_a, args.a, args.recurse)
        other = (args.b_host or args.host, args.b_catalog or args.catalog)
        if other == (args.host, args.catalog):
            doc_b = document(ml_a, args.b, args.recurse)
        else:
            ml_b = open_ml(other[0], other[1], args.home)
            try:
                doc_b = document(ml_b, args.b, args.recurse)
            finally:
                ml_b.close()
    finally:
        ml_a.close()
    diff = diff_records(doc_a, doc_b)
    if args.json:
        print(json.dumps(diff.to_json(), indent=2, default=str))
    else:
        print("\n".join(diff.render()))
    return 0 if diff.same else EXIT_DIFFER
