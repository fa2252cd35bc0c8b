"""``deriva-ml lineage RID [--depth N] [--format dot|svg|mermaid] [-o PATH]``: the provenance graph.

DOT and Mermaid are text (printed, or written to ``-o PATH``); SVG needs Graphviz's ``dot`` program and
is written to ``-o PATH`` (or stdout). Reads only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: Any, target: Any) -> None:
    g = sub.add_parser("lineage", help="draw the provenance graph around an execution, dataset or asset")
    target(g)
    g.add_argument("rid", help="an Execution, Dataset or asset RID")
    g.add_argument("--depth", type=int, default=2, help="execution hops from the start, each way (default 2)")
    g.add_argument("--format", choices=["dot", "svg", "mermaid"], default="dot", help="output format (default dot)")
    g.add_argument("-o", "--output", default=None, metavar="PATH", help="write to PATH instead of stdout")
    g.add_argument("--group-over", type=int, default=4, help="draw more outputs of one table than this as one node")
    g.add_argument("--metadata", action="store_true", help="include the library's metadata files")


def run(args: argparse.Namespace, ml: Any) -> int:
    from deriva_ml.core.errors import ValidationError
    from deriva_ml.lineage import lineage, render

    if args.depth < 0:
        raise ValidationError(f"--depth {args.depth} must be 0 or more")
    graph = lineage(
        ml.ports.catalog, args.rid, depth=args.depth, group_over=args.group_over, include_metadata=args.metadata
    )
    data = render(graph, args.format)
    if args.output:
        Path(args.output).write_bytes(data)
        print(f"wrote {args.output} ({len(graph.nodes)} nodes, {len(graph.edges)} edges)", file=sys.stderr)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0
