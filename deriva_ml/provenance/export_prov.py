"""An execution as W3C PROV (PROV-JSON), built with the ``prov`` library.

Made from a canonical document (:func:`~deriva_ml.provenance.canonical_record`, ``recurse=True`` for a
sweep). Mapping:

- each execution is a ``prov:Activity`` (``dml:execution/<RID>``) with its start and end times, status and
  provenance hash; its configuration choices and arguments are attributes (``dml:config_<name>``,
  ``dml:arguments``);
- the workflow is a ``prov:Plan`` entity (``dml:workflow/<checksum>``: URL, version) used through an
  association of the activity with the agent ``dml:deriva-ml`` (a ``prov:SoftwareAgent``);
- input datasets (``dml:dataset/<RID>/<version>``) and files (``dml:md5/<MD5>``, with file name, table, size)
  are entities the activity ``used``; outputs are entities ``wasGeneratedBy`` it;
- a sweep's child activity ``wasStartedBy`` its parent (the parent is the starter) and carries
  ``dml:sequence``.

Needs the optional extra ``export`` (``prov``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from deriva_ml.core.errors import ValidationError

__all__ = ["NAMESPACE", "build_prov", "export_prov"]

#: The namespace of deriva-ml's PROV identifiers and attributes.
NAMESPACE = ("dml", "https://w3id.org/deriva-ml/prov#")

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-/]")


def _local(text: Any) -> str:
    return _UNSAFE.sub("_", str(text))


def _time(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


def _require_prov() -> Any:
    from deriva_ml.provenance._extra import require

    return require("PROV export", "prov.model", "ProvDocument")


def build_prov(doc: Mapping[str, Any]) -> Any:
    """The ``prov.model.ProvDocument`` of a canonical document."""
    if not isinstance(doc, Mapping) or "content" not in doc or "record" not in doc:
        raise ValidationError(
            "export needs a canonical provenance document (canonical_record(gather_execution(...))) with "
            f"'content' and 'record'; got {sorted(doc) if isinstance(doc, Mapping) else type(doc).__name__}"
        )
    ProvDocument = _require_prov()
    from prov.constants import PROV, PROV_TYPE

    from deriva_ml.provenance.canonical import dataset_record

    pd = ProvDocument()
    dml = pd.add_namespace(*NAMESPACE)
    agent = pd.agent("dml:deriva-ml", {PROV_TYPE: PROV["SoftwareAgent"], "dml:name": "deriva-ml"})
    entities: dict[str, Any] = {}

    def entity(eid: str, attrs: dict[Any, Any]) -> Any:
        if eid not in entities:  # declared once, however many executions use it
            entities[eid] = pd.entity(eid, attrs)
        return entities[eid]

    def file_entity(a: Mapping[str, Any], rec: Mapping[str, Any]) -> Any:
        eid = f"dml:md5/{_local(a['md5'])}/{_local(a['filename'])}"
        attrs: dict[Any, Any] = {
            PROV_TYPE: dml["File"],
            "dml:filename": a["filename"],
            "dml:md5": a["md5"],
            "dml:table": a["table"],
        }
        if a.get("length") is not None:
            attrs["dml:length"] = int(a["length"])
        if rec.get("url"):
            attrs["prov:location"] = rec["url"]
        if a.get("types"):
            attrs["dml:types"] = ",".join(a["types"])
        return entity(eid, attrs)

    def dataset_entity(d: Mapping[str, Any], rec: Mapping[str, Any] | None) -> Any:
        rid = (rec or {}).get("rid") or d.get("description")
        attrs: dict[Any, Any] = {PROV_TYPE: dml["Dataset"], "dml:description": d.get("description") or ""}
        if d.get("version"):
            attrs["dml:version"] = d["version"]
        if (rec or {}).get("snapshot"):
            attrs["dml:snapshot"] = rec["snapshot"]  # type: ignore[index]
        if d.get("types"):
            attrs["dml:types"] = ",".join(d["types"])
        return entity(f"dml:dataset/{_local(rid)}/{_local(d.get('version'))}", attrs)

    def activity(c: Mapping[str, Any], r: Mapping[str, Any], h: str | None) -> Any:
        wf = c.get("workflow") or {}
        attrs: dict[Any, Any] = {PROV_TYPE: dml["Execution"], "dml:status": str(r.get("status"))}
        if r.get("description"):
            attrs["dml:description"] = r["description"]
        if h:
            attrs["dml:provenance_hash"] = h
        cfg = c.get("configuration") or {}
        for key, value in sorted((cfg.get("config_choices") or {}).items()):
            attrs[f"dml:config_{_local(key)}"] = str(value)
        if cfg.get("arguments"):
            attrs["dml:arguments"] = " ".join(cfg["arguments"])
        env = c.get("environment") or {}
        for key in ("python", "system", "machine", "lock_md5"):
            if env.get(key):
                attrs[f"dml:env_{key}"] = str(env[key])
        end = _time(r.get("modified")) if r.get("status") in ("Completed", "Failed", "Aborted") else None
        act = pd.activity(f"dml:execution/{_local(r['rid'])}", _time(r.get("created")), end, attrs)
        plan_id = f"dml:workflow/{_local(wf.get('checksum') or (r.get('workflow') or {}).get('rid'))}"
        plan_attrs: dict[Any, Any] = {PROV_TYPE: PROV["Plan"]}
        for key in ("url", "checksum", "version"):
            if wf.get(key):
                plan_attrs[f"dml:{key}"] = str(wf[key])
        if (r.get("workflow") or {}).get("name"):
            plan_attrs["dml:name"] = r["workflow"]["name"]
        plan = entity(plan_id, plan_attrs)
        pd.wasAssociatedWith(act, agent, plan)
        assets = {(a["table"], a["filename"], a["md5"]): a for a in r.get("assets") or []}
        for a in c["inputs"]["assets"]:
            pd.used(act, file_entity(a, assets.get((a["table"], a["filename"], a["md5"]), {})))
        for d in c["inputs"]["datasets"]:
            pd.used(act, dataset_entity(d, dataset_record(r, d, "Input")))
        for a in c["outputs"]["assets"]:
            pd.wasGeneratedBy(file_entity(a, assets.get((a["table"], a["filename"], a["md5"]), {})), act)
        for d in c["outputs"]["datasets"]:
            pd.wasGeneratedBy(dataset_entity(d, dataset_record(r, d, "Output")), act)
        for name, points in sorted(((c["outputs"].get("metrics") or {}).get("series") or {}).items()):
            values = [float(v) for _step, v in points]
            last_step = points[-1][0]
            mattrs: dict[Any, Any] = {
                PROV_TYPE: dml["Metric"],
                "dml:name": name,
                "dml:last_value": values[-1],
                "dml:min": min(values),
                "dml:max": max(values),
                "dml:count": len(values),
            }
            if last_step is not None:
                mattrs["dml:last_step"] = int(last_step)
            pd.wasGeneratedBy(pd.entity(f"dml:metric/{_local(r['rid'])}/{_local(name)}", mattrs), act)
        for child_c, child_r in zip(c.get("children") or [], r.get("children") or [], strict=False):
            if "record" not in child_r:
                continue
            child = activity(child_c["content"], child_r["record"], None)
            seq = child_c.get("sequence")
            extra = {"dml:sequence": int(seq)} if seq is not None else {}
            pd.wasStartedBy(child, starter=act, other_attributes=extra or None)
        return act

    activity(doc["content"], doc["record"], doc.get("hash"))
    return pd


def export_prov(doc: Mapping[str, Any], dest: str | Path | None = None) -> str:
    """The PROV-JSON text of ``doc``; written to ``dest`` too when given."""
    text = build_prov(doc).serialize(format="json", indent=2)
    if dest is not None:
        Path(dest).write_text(text, encoding="utf-8")
    return str(text)
