"""An execution as a Workflow Run RO-Crate (https://w3id.org/ro/wfrun/workflow/0.5), built with ``rocrate``.

Made from a canonical document (:func:`~deriva_ml.provenance.canonical_record`, with ``recurse=True`` for a
sweep): the root data entity conforms to the Process Run Crate, Workflow Run Crate and Workflow RO-Crate
profiles; its ``mainEntity`` is the workflow (a ``ComputationalWorkflow`` identified by its URL, with its
checksum and version); every execution is a ``CreateAction`` whose ``instrument`` is its workflow, whose
``object`` lists the input datasets, input files and configuration choices (``PropertyValue``, each the
``workExample`` of a ``FormalParameter`` of the workflow) and whose ``result`` lists the output files and
datasets. A sweep's children are further ``CreateAction`` entities, each ``isPartOf`` the parent's action.

Files are not copied: each is a web-based data entity identified by ``base_url`` + its object URL (the
server's Hatrac URL), or — for the embedded catalog, without ``base_url`` — by a ``urn:md5:`` identifier,
with its name, size, MD5 and encoding format. Needs the optional extra ``export`` (``rocrate``).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deriva_ml.core.errors import ValidationError

__all__ = ["PROFILES", "build_rocrate", "export_rocrate"]

#: The profiles the crate conforms to (versioned permalinks).
PROFILES = (
    "https://w3id.org/ro/wfrun/process/0.5",
    "https://w3id.org/ro/wfrun/workflow/0.5",
    "https://w3id.org/workflowhub/workflow-ro-crate/1.0",
)

_STATUS = {
    "Completed": "http://schema.org/CompletedActionStatus",
    "Failed": "http://schema.org/FailedActionStatus",
    "Aborted": "http://schema.org/FailedActionStatus",
}


def _require_rocrate() -> Any:
    from deriva_ml.provenance._extra import require

    return require("RO-Crate export", "rocrate.rocrate", "ROCrate")


def _object_id(asset: Mapping[str, Any], base_url: str | None) -> str:
    url = str(asset.get("url") or "")
    if base_url and url.startswith("/"):
        return base_url.rstrip("/") + url
    if url.startswith(("http://", "https://")):
        return url
    return f"urn:md5:{asset.get('md5')}:{asset.get('filename')}"


def _one_or_list(values: Any) -> Any:
    """RO-Crate 1.1 prefers a single value to a one-element list; None for none."""
    items = list(values or [])
    return None if not items else items[0] if len(items) == 1 else items


def _check(doc: Mapping[str, Any]) -> None:
    if not isinstance(doc, Mapping) or "content" not in doc or "record" not in doc:
        raise ValidationError(
            "export needs a canonical provenance document (canonical_record(gather_execution(...))) with "
            f"'content' and 'record'; got {sorted(doc) if isinstance(doc, Mapping) else type(doc).__name__}"
        )


def build_rocrate(
    doc: Mapping[str, Any],
    *,
    base_url: str | None = None,
    name: str | None = None,
    workflow_files: Mapping[str, str | Path] | None = None,
) -> Any:
    """The ``rocrate.rocrate.ROCrate`` of a canonical document (nothing written).

    ``workflow_files`` maps a workflow checksum to a local copy of its code, included in the crate as the
    workflow file; a workflow without one is referenced by its URL.
    """
    _check(doc)
    ROCrate = _require_rocrate()
    from rocrate.model.contextentity import ContextEntity

    from deriva_ml.provenance.canonical import dataset_record

    crate = ROCrate(version="1.1")  # the RO-Crate version the Workflow Run Crate 0.5 profiles build on
    record, content = doc["record"], doc["content"]
    root = crate.root_dataset
    root["name"] = name or f"Execution {record['rid']}"
    root["description"] = record.get("description") or f"deriva-ml execution {record['rid']}"
    license_id = "https://spdx.org/licenses/CC-BY-4.0"
    root["license"] = crate.add(
        ContextEntity(crate, license_id, properties={"@type": "CreativeWork", "name": "CC-BY-4.0"})
    )
    crate.metadata["conformsTo"] = [
        {"@id": "https://w3id.org/ro/crate/1.1"},
        {"@id": "https://w3id.org/workflowhub/workflow-ro-crate/1.0"},
    ]
    accessed = record.get("modified") or record.get("created")
    root["datePublished"] = record.get("modified") or record.get("created") or "1970-01-01T00:00:00+00:00"
    root["conformsTo"] = [{"@id": p} for p in PROFILES]
    for p in PROFILES:
        crate.add(
            ContextEntity(
                crate,
                p,
                properties={"@type": "CreativeWork", "name": p.rsplit("/", 2)[-2], "version": p.rsplit("/", 1)[-1]},
            )
        )
    workflows: dict[str, Any] = {}
    params: dict[str, Any] = {}

    def workflow(c: Mapping[str, Any], r: Mapping[str, Any]) -> Any:
        wf = c.get("workflow") or {}
        wid = str(wf.get("url") or f"#workflow-{r.get('workflow', {}).get('rid')}")
        if wid in workflows:
            return workflows[wid]
        props = {
            "@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow"],
            "name": (r.get("workflow") or {}).get("name") or wid.rsplit("/", 1)[-1],
            "url": wid,
            "version": wf.get("version"),
            "identifier": f"git-blob:{wf.get('checksum')}" if wf.get("checksum") else None,
            "programmingLanguage": {"@id": "#python"},
            "input": [],
        }
        props = {k: v for k, v in props.items() if v is not None}
        source = (workflow_files or {}).get(str(wf.get("checksum")))
        if source is not None:  # the code itself, in the crate (Workflow RO-Crate: the main workflow is a file)
            entity = crate.add_file(source, dest_path=f"workflow/{Path(source).name}", properties=props)
        else:  # a web-based data entity: the file at its recorded URL
            entity = crate.add_file(wid, properties=props)
        workflows[wid] = entity
        return entity

    if crate.get("#python") is None:
        crate.add(
            ContextEntity(
                crate,
                "#python",
                properties={"@type": "ComputerLanguage", "name": "Python", "url": {"@id": "https://www.python.org/"}},
            )
        )

    def file_entity(a: Mapping[str, Any]) -> Any:
        fid = _object_id(a, base_url)
        found = crate.get(fid)
        if found is not None:
            return found
        kind = mimetypes.guess_type(str(a.get("filename") or ""))[0] or "application/octet-stream"
        props = {
            "@type": "File",
            "name": a.get("filename"),
            "contentSize": str(a.get("length")) if a.get("length") is not None else None,
            "encodingFormat": kind,
            "identifier": f"md5:{a.get('md5')}",
            "additionalType": a.get("table"),
            "keywords": _one_or_list(a.get("types")),
            "sdDatePublished": accessed if fid.startswith(("http://", "https://")) else None,
        }
        return crate.add_file(fid, properties={k: v for k, v in props.items() if v is not None})

    def dataset_entity(d: Mapping[str, Any], rec: Mapping[str, Any] | None) -> Any:
        rid = (rec or {}).get("rid") or d.get("description")
        did = f"#dataset-{rid}@{d.get('version')}"
        found = crate.get(did)
        if found is not None:
            return found
        props = {
            "@type": "Dataset",
            "name": d.get("description") or f"Dataset {rid}",
            "version": d.get("version"),
            "keywords": _one_or_list(d.get("types")),
            "identifier": f"snapshot:{(rec or {}).get('snapshot')}" if (rec or {}).get("snapshot") else None,
        }
        entity = crate.add(ContextEntity(crate, did, properties={k: v for k, v in props.items() if v is not None}))
        crate.root_dataset.append_to("hasPart", entity)
        return entity

    def action(c: Mapping[str, Any], r: Mapping[str, Any], h: str | None, parent: Any | None) -> Any:
        wf = workflow(c, r)
        assets = {(a["table"], a["filename"], a["md5"]): a for a in r.get("assets") or []}

        def rec_of(a: Mapping[str, Any]) -> Mapping[str, Any]:
            return {**a, **assets.get((a["table"], a["filename"], a["md5"]), {})}

        def ds_rec(d: Mapping[str, Any], role: str) -> Mapping[str, Any] | None:
            return dataset_record(r, d, role)

        objects = [dataset_entity(d, ds_rec(d, "Input")) for d in c["inputs"]["datasets"]]
        objects += [file_entity(rec_of(a)) for a in c["inputs"]["assets"]]
        for key, value in sorted((c.get("configuration") or {}).get("config_choices", {}).items()):
            pid = f"#param-{key}"
            if pid not in params:
                params[pid] = crate.add_formal_parameter(name=key, additionalType="Text", identifier=pid)
                wf.append_to("input", params[pid])
            vid = f"#{r['rid']}-config-{key}"
            pv = crate.add(
                ContextEntity(crate, vid, properties={"@type": "PropertyValue", "name": key, "value": str(value)})
            )
            params[pid].append_to("workExample", pv)
            pv["exampleOfWork"] = {"@id": pid}
            objects.append(pv)
        args = (c.get("configuration") or {}).get("arguments") or []
        if args:
            objects.append(
                crate.add(
                    ContextEntity(
                        crate,
                        f"#{r['rid']}-arguments",
                        properties={"@type": "PropertyValue", "name": "arguments", "value": " ".join(args)},
                    )
                )
            )
        results = [file_entity(rec_of(a)) for a in c["outputs"]["assets"]]
        results += [dataset_entity(d, ds_rec(d, "Output")) for d in c["outputs"]["datasets"]]
        for name, points in sorted(((c["outputs"].get("metrics") or {}).get("series") or {}).items()):
            values = [float(v) for _step, v in points]
            results.append(
                crate.add(
                    ContextEntity(
                        crate,
                        f"#{r['rid']}-metric-{name}",
                        properties={
                            "@type": "PropertyValue",
                            "name": name,
                            "value": values[-1],
                            "minValue": min(values),
                            "maxValue": max(values),
                            "description": f"last of {len(values)} logged values (step {points[-1][0]})",
                        },
                    )
                )
            )
        props: dict[str, Any] = {
            "name": f"Execution {r['rid']}",
            "description": r.get("description") or None,
            "startTime": r.get("created"),
            "endTime": r.get("modified") if r.get("status") in _STATUS else None,
            "actionStatus": {"@id": _STATUS.get(str(r.get("status")), "http://schema.org/ActiveActionStatus")},
            "identifier": f"sha256:{h}" if h else None,
        }
        if r.get("status") in ("Failed", "Aborted") and r.get("status_detail"):
            props["error"] = r["status_detail"]
        if parent is not None:
            props["isPartOf"] = {"@id": parent.id}
        act = crate.add_action(
            wf,
            identifier=f"#execution-{r['rid']}",
            object=objects,
            result=results,
            properties={k: v for k, v in props.items() if v is not None},
        )
        for child_c, child_r in zip(c.get("children") or [], (r.get("children") or []), strict=False):
            if "record" in child_r:
                action(child_c["content"], child_r["record"], None, act)
        root.append_to("mentions", act)
        return act

    crate.mainEntity = workflow(content, record)
    action(content, record, doc.get("hash"), None)
    return crate


def export_rocrate(
    doc: Mapping[str, Any],
    dest: str | Path,
    *,
    base_url: str | None = None,
    name: str | None = None,
    workflow_files: Mapping[str, str | Path] | None = None,
) -> Path:
    """Write the Workflow Run RO-Crate of ``doc`` into directory ``dest`` (``ro-crate-metadata.json``), or
    a zip file when ``dest`` ends with ``.zip``. Returns the path written. See :func:`build_rocrate`."""
    crate = build_rocrate(doc, base_url=base_url, name=name, workflow_files=workflow_files)
    out = Path(dest)
    if out.suffix == ".zip":
        crate.write_zip(out)
    else:
        out.mkdir(parents=True, exist_ok=True)
        crate.write(out)
    return out
