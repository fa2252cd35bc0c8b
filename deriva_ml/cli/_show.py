"""What ``deriva-ml show RID`` gathers and prints: an execution with its workflow, inputs, outputs, status
history, nested children and working directory.

Reads only, and a bounded number of requests whatever the size of the execution: the Execution row, the
Workflow row and its types, the dataset links and their versions, per asset table one link query (and, for
tables with links, one query for the asset rows and one for their types), one query per nesting level and
one for every child row. Nothing is written, locally or in the catalog.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from deriva_ml.core.codec import configuration_from_json, loads, to_jsonable
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.records import DatasetVersion, ExecutionRecord


def _manifest_state(work: Path) -> dict[str, str]:
    """The execution's local manifest state (read-only; {} when there is none or it is unreadable)."""
    path = work / "manifest.sqlite"
    if not path.is_file():
        return {}
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return {str(n): str(v) for n, v in db.execute("SELECT name, value FROM state")}
        finally:
            db.close()
    except sqlite3.Error:
        return {}


def _version_at(rows: list[dict[str, Any]], when: Any) -> str | None:
    """The highest version of a dataset that existed at ``when`` (its RCT), else the highest overall."""
    parsed = []
    for r in rows:
        try:
            parsed.append((DatasetVersion.parse(r.get("Version")), str(r.get("RCT") or "")))
        except Exception:  # a malformed version row is skipped, not fatal for show
            continue
    if not parsed:
        return None
    before = [v for v, rct in parsed if when and rct and rct <= str(when)]
    return str(max(before or [v for v, _ in parsed]))


def gather(ml: Any, rid: str) -> dict[str, Any]:
    """Everything ``show`` prints, as JSON-able data."""
    from deriva_ml.catalog.schema import is_asset

    record: ExecutionRecord = ml.lookup_execution(rid)
    rid = str(record.rid)
    cat = ml.catalog
    exe_row = cat.query(ML_SCHEMA, "Execution", {"RID": rid})[0]
    work = ml.execution_dir(rid)
    state = _manifest_state(work)
    if state.get("record"):
        try:
            local = loads(state["record"], ExecutionRecord)
            if local.rid == record.rid and local.history:
                record = attrs_evolve_history(record, local)
        except Exception:  # a local copy that does not parse is ignored
            pass

    workflow: dict[str, Any] | None = None
    if record.workflow_rid:
        rows = cat.query(ML_SCHEMA, "Workflow", {"RID": record.workflow_rid})
        if rows:
            w = rows[0]
            types = cat.query(ML_SCHEMA, "Workflow_Workflow_Type", {"Workflow": record.workflow_rid})
            workflow = {
                "rid": w["RID"],
                "name": w.get("Name"),
                "url": w.get("URL"),
                "checksum": w.get("Checksum"),
                "version": w.get("Version"),
                "types": sorted(t.get("Workflow_Type") for t in types if t.get("Workflow_Type")),
            }

    # dataset inputs (and datasets this execution produced), versions from the run's configuration if known
    configured: dict[str, str] = {}
    if state.get("configuration"):
        try:
            for d in configuration_from_json(state["configuration"]).datasets:
                if d.version is not None:
                    configured[str(d.rid)] = str(d.version)
        except Exception:
            pass
    links = cat.query(ML_SCHEMA, "Dataset_Execution", {"Execution": rid})
    ds_rids = list(dict.fromkeys(r["Dataset"] for r in links))
    versions: dict[str, list[dict[str, Any]]] = {}
    if ds_rids:
        for v in cat.query(ML_SCHEMA, "Dataset_Version", {"Dataset": ds_rids}):
            versions.setdefault(v["Dataset"], []).append(v)
    datasets = []
    for link in links:
        d = link["Dataset"]
        role = link.get("Asset_Role") or "Input"
        version = configured.get(d) or _version_at(versions.get(d, []), exe_row.get("RCT"))
        datasets.append({"rid": d, "version": version, "role": role})

    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    model = cat.model()
    for t in sorted((t for t in model.tables if is_asset(t)), key=lambda t: (t.schema, t.name)):
        link_table = model.table(t.schema, f"{t.name}_Execution")
        if link_table is None:
            continue
        alinks = cat.query(t.schema, link_table.name, {"Execution": rid})
        if not alinks:
            continue
        arids = list(dict.fromkeys(r[t.name] for r in alinks if r.get(t.name)))
        rows_by = {r["RID"]: r for r in cat.query(t.schema, t.name, {"RID": arids})}
        asset_types: dict[str, list[str]] = {}
        type_table = model.table(t.schema, f"{t.name}_Asset_Type")
        if type_table is not None:
            for r in cat.query(t.schema, type_table.name, {t.name: arids}):
                asset_types.setdefault(r[t.name], []).append(r.get("Asset_Type"))
        for link in alinks:
            row = rows_by.get(link.get(t.name))
            if row is None:
                continue
            item = {
                "table": t.name,
                "rid": row["RID"],
                "filename": row.get("Filename"),
                "length": row.get("Length"),
                "md5": row.get("MD5"),
                "types": sorted(x for x in asset_types.get(row["RID"], []) if x),
            }
            (inputs if link.get("Asset_Role") == "Input" else outputs).append(item)

    from deriva_ml.execution._metrics import show_metrics  # --- metrics (branch metrics)

    return {
        "execution": to_jsonable(record),
        "workflow": workflow,
        "inputs": {"datasets": [d for d in datasets if d["role"] == "Input"], "assets": inputs},
        "outputs": {"datasets": [d for d in datasets if d["role"] != "Input"], "assets": outputs},
        "children": _children_tree(ml, rid),
        "working_dir": str(work) if work.exists() else None,
        "metrics": show_metrics(ml.ports, rid, outputs),
    }


def attrs_evolve_history(catalog: ExecutionRecord, local: ExecutionRecord) -> ExecutionRecord:
    """The catalog's record with the local copy's history (and times) when the local copy is as far along."""
    import attrs

    if local.status == catalog.status:
        return attrs.evolve(
            catalog,
            history=local.history,
            start_time=catalog.start_time or local.start_time,
            stop_time=catalog.stop_time or local.stop_time,
        )
    return attrs.evolve(catalog, history=tuple(local.history) + tuple(catalog.history))


def _children_tree(ml: Any, rid: str) -> list[dict[str, Any]]:
    """Nested executions as a tree: one links query per level and one query for every child row."""
    from deriva_ml.core.execution_rows import record_from_row as _record_from_row

    cat = ml.catalog
    kids: dict[str, list[str]] = {}
    seen = {rid}
    frontier = [rid]
    while frontier:
        links = cat.query(ML_SCHEMA, "Execution_Execution", {"Execution": frontier})
        links.sort(key=lambda r: (r.get("Sequence") is None, r.get("Sequence") or 0, r["Nested_Execution"]))
        nxt = []
        for link in links:
            child = link["Nested_Execution"]
            if child in seen:
                continue
            seen.add(child)
            kids.setdefault(link["Execution"], []).append(child)
            nxt.append(child)
        frontier = nxt
    all_kids = [c for cs in kids.values() for c in cs]
    if not all_kids:
        return []
    rows = {r["RID"]: r for r in cat.query(ML_SCHEMA, "Execution", {"RID": all_kids})}

    def build(parent: str) -> list[dict[str, Any]]:
        out = []
        for c in kids.get(parent, []):
            if c in rows:
                rec = _record_from_row(rows[c])
                out.append(
                    {
                        "rid": c,
                        "status": rec.status.value,
                        "description": rec.description,
                        "duration": rec.duration_text,
                        "children": build(c),
                    }
                )
        return out

    return build(rid)


def _size(n: Any) -> str:
    if n is None:
        return "?"
    n = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{int(n)} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


def _time(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, str):
        return value.replace("T", " ")[:19]
    return "" if value is None else str(value)


def render(info: dict[str, Any]) -> list[str]:
    """``show``'s text form."""
    e = info["execution"]
    out = [f"execution {e['rid']}  {e['status']}" + (f"  ({e['status_detail']})" if e.get("status_detail") else "")]
    if e.get("description"):
        out.append(f"  description: {e['description']}")
    if e.get("start_time") or e.get("stop_time"):
        out.append(f"  started: {_time(e.get('start_time'))}  stopped: {_time(e.get('stop_time'))}")
    w = info["workflow"]
    out.append("workflow")
    if w is None:
        out.append("  (none)")
    else:
        out.append(f"  {w['rid']}  {w['name']}" + (f"  [{', '.join(w['types'])}]" if w["types"] else ""))
        out.append(f"  url:      {w['url'] or ''}")
        out.append(f"  checksum: {w['checksum'] or ''}")
        out.append(f"  version:  {w['version'] or ''}")
    for title, part in (("inputs", info["inputs"]), ("outputs", info["outputs"])):
        out.append(title)
        if not part["datasets"] and not part["assets"]:
            out.append("  (none)")
        for d in part["datasets"]:
            out.append(f"  dataset {d['rid']}" + (f" @ {d['version']}" if d.get("version") else ""))
        width = max((len(a["table"]) for a in part["assets"]), default=0)
        for a in part["assets"]:
            types = f"  [{', '.join(a['types'])}]" if a["types"] else ""
            out.append(f"  {a['table']:{width}}  {a['rid']:10}  {_size(a['length']):>9}  {a['filename']}{types}")
    out.append("status history")
    hist = e.get("history") or []
    if not hist:
        out.append("  (none)")
    for h in hist:
        out.append(f"  {_time(h.get('at')):19}  {h.get('to_status')}" + (f": {h['detail']}" if h.get("detail") else ""))
    if info["children"]:
        out.append("nested executions")

        def tree(nodes: list[dict[str, Any]], prefix: str) -> None:
            for i, n in enumerate(nodes):
                last = i == len(nodes) - 1
                out.append(f"{prefix}{'└── ' if last else '├── '}{n['rid']}  {n['status']}  {n['description']}")
                tree(n["children"], prefix + ("    " if last else "│   "))

        tree(info["children"], "  ")
    if info.get("metrics"):  # --- metrics (branch metrics)
        from deriva_ml.execution._metrics import render_metrics

        out.append("metrics")
        out.extend(render_metrics(info["metrics"]))
    out.append(f"working directory: {info['working_dir'] or '(none on this machine)'}")
    return out
