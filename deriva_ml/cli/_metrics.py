"""``deriva-ml metrics RID [--children] [--sort NAME] [--order min|max] [--json]``.

Without ``--children``: the execution's metrics, one line per name (last value and step, count, min, max).
With ``--children``: the execution's direct children (a sweep's runs) side by side, one row per child and one
column per metric (its last value), sorted by ``--sort`` (children without it last). Reads only: one query
for the children, one for their rows and one for their summaries (``Execution_Metric``), or, on a catalog
without that table, one object read per child's ``metrics.jsonl``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any, target: Any) -> None:
    """Add the ``metrics`` subcommand to ``sub`` (``target`` adds --host/--catalog/--home)."""
    m = sub.add_parser("metrics", help="an execution's metrics, or its children side by side (a sweep)")
    target(m)
    m.add_argument("rid", help="the execution's RID")
    m.add_argument("--children", action="store_true", help="compare the execution's children (a sweep's runs)")
    m.add_argument("--sort", default=None, help="with --children: sort by this metric's last value")
    m.add_argument("--order", choices=["min", "max"], default="min", help="min: smallest first (default); max")
    m.add_argument("--json", action="store_true", help="print JSON (for scripts)")


def gather(ml: Any, rid: str, *, children: bool, sort: str | None, order: str) -> dict[str, Any]:
    """What ``metrics`` prints, as JSON-able data."""
    from deriva_ml.core.definitions import ML_SCHEMA
    from deriva_ml.core.errors import ValidationError
    from deriva_ml.core.execution_rows import record_from_row as _record_from_row
    from deriva_ml.core.rid import parse_rid
    from deriva_ml.execution._metrics import _summary_json, read_summaries
    from deriva_ml.services.executions import child_rids

    rid = str(parse_rid(rid, "RID"))
    record = ml.lookup_execution(rid)
    if not children:
        own = read_summaries(ml.ports, [rid]).get(rid)
        if own is None:
            own = tuple(ml.metric_summary(rid).values())  # not uploaded yet: the local log
        return {"execution": str(record.rid), "metrics": [_summary_json(s) for s in own]}
    if sort is None and order != "min":
        raise ValidationError("--order needs --sort (the metric to sort the children by)")
    kids = [str(k) for k in child_rids(ml.ports, rid)]
    rows = {r["RID"]: r for r in ml.catalog.query(ML_SCHEMA, "Execution", {"RID": kids})} if kids else {}
    sums = read_summaries(ml.ports, kids)
    names: list[str] = []
    table: list[dict[str, Any]] = []
    for k in kids:
        if k not in rows:
            continue
        rec = _record_from_row(rows[k])
        values = {s.name: s.last_value for s in sums.get(k, ())}
        for n in values:
            if n not in names:
                names.append(n)
        table.append({"rid": k, "status": rec.status.value, "description": rec.description, "metrics": values})
    if sort is not None:
        if table and sort not in names:
            raise ValidationError(f"--sort {sort!r}: no child of {rid} logged it; logged: {names}")
        sign = 1 if order == "min" else -1
        table.sort(key=lambda r: (sort not in r["metrics"], sign * r["metrics"].get(sort, 0.0)))
    return {"execution": rid, "metrics": names, "sort": sort, "order": order, "children": table}


def render(info: dict[str, Any]) -> list[str]:
    """The text form."""
    from deriva_ml.execution._metrics import _num, render_metrics

    if "children" not in info:
        if not info["metrics"]:
            return [f"execution {info['execution']}: no metrics"]
        return [f"execution {info['execution']}", *render_metrics(info["metrics"])]
    names = info["metrics"]
    header = ["RID", "Status", *names]
    body = [[c["rid"], c["status"], *(_num(c["metrics"].get(n)) for n in names)] for c in info["children"]]
    if not body:
        return [f"execution {info['execution']}: no children"]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=True)]
    lines = ["  ".join(f"{h:<{w}}" for h, w in zip(header, widths, strict=True)).rstrip()]
    lines += ["  ".join(f"{x:<{w}}" for x, w in zip(row, widths, strict=True)).rstrip() for row in body]
    return lines


def run(ml: Any, args: argparse.Namespace) -> int:
    info = gather(ml, args.rid, children=args.children, sort=args.sort, order=args.order)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        print("\n".join(render(info)))
    return 0
