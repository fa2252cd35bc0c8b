"""Creating, restoring and aborting executions: the shell around :class:`Execution`, on :class:`Services`.

Each function gathers what it needs through the ports, calls the pure plans
(:func:`~deriva_ml.core.plans.plan_insert_execution`, :func:`~deriva_ml.core.plans.plan_abort`) and
applies them; none of them takes the facade.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs

from deriva_ml.core.codec import parse_json
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.errors import DerivaMLException, RIDNotFound, ValidationError
from deriva_ml.core.execution_rows import caught_up, parse_time, record_from_row
from deriva_ml.core.plans import plan_abort, plan_insert_execution
from deriva_ml.core.records import ExecutionConfiguration, ExecutionRecord, Workflow, transition
from deriva_ml.core.redact import redact_description
from deriva_ml.core.rid import RID, parse_rid
from deriva_ml.core.status import Status
from deriva_ml.execution._execution import Execution
from deriva_ml.execution._lease import LEASE, lease_text, owner_is_alive
from deriva_ml.services import Services
from deriva_ml.services.executions import IDENTITY

#: Status_Detail of an execution whose inputs are being fetched.
INITIALIZING_DETAIL = "Downloading input datasets and assets"


def execution_dir(services: Services, rid: str) -> Path:
    return services.ports.dirs.working_dir / "executions" / rid


def create_execution(
    services: Services,
    configuration: ExecutionConfiguration,
    workflow: Workflow | str | None = None,
    *,
    dry_run: bool = False,
    metadata_files: Sequence[tuple[str | os.PathLike[str], str]] = (),
) -> Execution:
    """Create and initialize an execution (status Pending when this returns); see ``DerivaML.create_execution``."""
    ports, workflows = services.ports, services.workflows
    wf_arg = workflow if workflow is not None else configuration.workflow
    if wf_arg is None:
        raise DerivaMLException(
            "no workflow: pass ExecutionConfiguration(workflow=...) or create_execution(config, workflow=...)"
        )
    wf = workflows.lookup(wf_arg).record if isinstance(wf_arg, str) else workflows.with_source(wf_arg)
    check_inputs(services, configuration)
    # argv is provenance; secrets in it (--token x, --password=y) are not
    from deriva_ml.core.redact import redact_argv

    argv = configuration.argv or tuple(sys.argv)
    configuration = attrs.evolve(configuration, argv=tuple(redact_argv(argv)))
    if dry_run:
        wf_rid = wf.rid or (workflows.find_row(wf.url, wf.checksum) or {}).get("RID")
        wf = attrs.evolve(wf, rid=wf_rid)
        rid = RID("0000")
        stamp = ports.now().strftime("%Y%m%d-%H%M%S-%f")
        work = ports.dirs.working_dir / "dry-run" / stamp
    else:
        wf = attrs.evolve(wf, rid=workflows.add(wf))
    # user text reaching a catalog row is redacted like everything else the library writes
    description = redact_description(configuration.description)
    record = ExecutionRecord(rid=RID("0000"), workflow_rid=wf.rid, description=description)
    rct = ""
    if not dry_run:
        # Created -> Initializing before the row exists: the row is inserted already Initializing (one
        # request instead of an insert and an update; the record's history keeps both states)
        record = transition(record, Status.initializing, INITIALIZING_DETAIL, ports.now())
        result = ports.catalog.apply(plan_insert_execution(record))
        rid = result.rids["execution"]
        rct = str(result.inserted[0][0].get("RCT") or "")
        record = attrs.evolve(record, rid=rid)
        work = execution_dir(services, rid)
        if work.exists():  # left by a catalog that reused this RID (e.g. recreated): never mix them
            set_aside(services, work, "a new execution got this RID")
    from deriva_ml.replay.link import child_hook  # a replayed run's link to its original and its pinned inputs

    configuration, metadata_files = child_hook(configuration, metadata_files, rid, work, os.environ)
    config = attrs.evolve(configuration, workflow=wf)
    # the lease is held from creation on (a process that dies before Initializing is found too): written
    # with the record, configuration and workflow in the manifest's first commit
    state = {} if dry_run else {IDENTITY: rct, LEASE: lease_text()}
    exe = Execution(services, record, config, wf, work, dry_run=dry_run, state=state)
    extra = [(Path(p), t) for p, t in metadata_files]
    exe._initialize(extra_metadata_files=extra, initializing_detail=INITIALIZING_DETAIL)
    return exe


def set_aside(services: Services, work: Path, why: str) -> None:
    stamp = services.ports.now().strftime("%Y%m%dT%H%M%S%f")
    aside = work.with_name(f"{work.name}.stale-{stamp}")
    work.rename(aside)
    if services.ports.log is not None:
        services.ports.log.warning("execution directory set aside", path=str(work), moved_to=str(aside), reason=why)


def open_manifest(services: Services, row: Mapping[str, Any], *, create: bool) -> Any:
    """The local manifest of the execution ``row`` — only if it belongs to that very row.

    A directory whose manifest names another row (same RID, different creation time: a catalog that
    was recreated) is set aside rather than trusted. ``create=False`` returns None where none exists.
    """
    from deriva_ml.execution._manifest import Manifest, ManifestError
    from deriva_ml.execution._rebuild import rebuild_manifest

    work = execution_dir(services, row["RID"])
    path = work / "manifest.sqlite"
    if path.exists():
        try:
            manifest = Manifest(path)
        except ManifestError as exc:
            if not exc.corrupt:
                raise
            if services.ports.log is not None:
                services.ports.log.warning("corrupt manifest set aside and rebuilt", path=str(path), error=str(exc))
            manifest = rebuild_manifest(services, row["RID"], work, services.ports.now().strftime("%Y%m%dT%H%M%S%f"))
            if row.get("RCT"):
                manifest.set_state(IDENTITY, str(row["RCT"]))
            return manifest
        mine = manifest.get_state(IDENTITY)
        if mine is None or not row.get("RCT") or mine == str(row["RCT"]):
            return manifest
        manifest.close()
        set_aside(services, work, "its manifest belongs to another execution with the same RID")
    if not create:
        return None
    manifest = Manifest(path)
    if row.get("RCT"):
        manifest.set_state(IDENTITY, str(row["RCT"]))
    return manifest


def check_inputs(services: Services, configuration: ExecutionConfiguration) -> None:
    """Every dataset RID is a Dataset with the requested version, and every asset RID is in an asset
    table — all checked before anything is written (two queries for the datasets, whatever their number).
    """
    from deriva_ml.core.errors import NotFound

    catalog, schema = services.ports.catalog, services.schema
    ds = [d.rid for d in configuration.datasets]
    if ds:
        found = {r["RID"] for r in catalog.query(ML_SCHEMA, "Dataset", {"RID": ds}, columns=["RID"])}
        for rid in ds:
            if rid not in found:
                raise schema.not_in_table(rid, "Dataset")
        wanted = [d for d in configuration.datasets if d.version is not None]
        if wanted:
            from deriva_ml.dataset._plans import find_version_row

            rows: dict[str, list[dict[str, Any]]] = {}
            for r in catalog.query(
                ML_SCHEMA, "Dataset_Version", {"Dataset": list(dict.fromkeys(d.rid for d in wanted))}
            ):
                rows.setdefault(r["Dataset"], []).append(r)
            for spec in wanted:
                assert spec.version is not None
                have = rows.get(spec.rid, [])
                if find_version_row(have, spec.version) is None:
                    known = sorted(str(r.get("Version")) for r in have if r.get("Version"))
                    raise NotFound(
                        f"dataset {spec.rid} has no version {spec.version}; "
                        f"its versions: {', '.join(known) or '(none)'}"
                    )
    from deriva_ml.catalog.schema import is_asset

    for a in configuration.assets:
        sname, table = schema.resolve_rid(a.rid)
        t = catalog.model().table(sname, table)
        if t is None or not is_asset(t):
            raise ValidationError(f"asset {a.rid!r} is a row of {sname}:{table}, which is not an asset table")


def restore_execution(services: Services, execution_rid: str) -> Execution:
    """Rebuild an Execution from the catalog and its local manifest (to finish an interrupted upload)."""
    from deriva_ml.core.codec import configuration_from_json, loads

    rid = parse_rid(execution_rid, "execution rid")
    rows = services.ports.catalog.query(ML_SCHEMA, "Execution", {"RID": rid})
    if not rows:
        raise RIDNotFound(rid, "Execution")
    row_record = record_from_row(rows[0])
    work = execution_dir(services, row_record.rid)
    manifest = open_manifest(services, rows[0], create=True)
    saved = manifest.get_state("record")
    record = row_record
    if saved:
        local = loads(saved, ExecutionRecord)
        # the catalog is the truth for status; the local copy keeps the times and history
        record = local if local.status == row_record.status else caught_up(local, row_record)
    cfg_text = manifest.get_state("configuration")
    if cfg_text is None:
        cfg_text = fetch_configuration_json(services, row_record.rid)
    config = (
        configuration_from_json(cfg_text) if cfg_text else ExecutionConfiguration(description=row_record.description)
    )
    wf_text = manifest.get_state("workflow")
    if wf_text:
        wf = loads(wf_text, Workflow)
    elif row_record.workflow_rid:
        wf = services.workflows.lookup(row_record.workflow_rid).record
    elif isinstance(config.workflow, Workflow):
        wf = config.workflow
    else:
        raise DerivaMLException(f"execution {execution_rid} has no workflow")
    exe = Execution(services, record, config, wf, work, manifest=manifest)
    if services.ports.log is not None:
        services.ports.log.info("execution restored", execution_rid=record.rid, status=record.status.value)
    return exe


def fetch_configuration_json(services: Services, execution_rid: RID) -> str | None:
    catalog = services.ports.catalog
    links = catalog.query(ML_SCHEMA, "Execution_Metadata_Execution", {"Execution": execution_rid})
    rids = [r["Execution_Metadata"] for r in links]
    if not rids:
        return None
    rows = catalog.query(ML_SCHEMA, "Execution_Metadata", {"RID": rids, "Filename": "configuration.json"})
    if not rows:
        return None
    row = rows[0]
    dest = execution_dir(services, execution_rid) / "metadata" / "configuration.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    services.ports.store.get(row["URL"], dest, md5=row.get("MD5"))
    return dest.read_text()


def abort_stale_executions(services: Services, older_than: timedelta | None = None) -> list[ExecutionRecord]:
    """Mark as Aborted executions whose process died (see ``DerivaML.abort_stale_executions``)."""
    from deriva_ml.core.codec import dumps, loads

    ports = services.ports
    log = ports.log
    live = (Status.created, Status.initializing, Status.pending, Status.running)
    rows = ports.catalog.query(ML_SCHEMA, "Execution", {"Status": [s.value for s in live]})
    now = ports.now()
    planned: list[tuple[ExecutionRecord, str, Any]] = []
    for row in rows:
        record = record_from_row(row)
        reason = None
        manifest = open_manifest(services, row, create=False)
        if manifest is not None:
            owner_text = manifest.get_state("owner")
            if owner_text:
                try:
                    owner = parse_json(owner_text, f"owner of execution {row['RID']}")
                except ValueError:
                    owner = None  # unreadable: cannot tell, the execution is left alone
                if isinstance(owner, dict) and owner_is_alive(owner) is False:
                    reason = f"process {owner.get('pid')} on {owner.get('host')} is gone"
            saved = manifest.get_state("record")
            if saved:
                local = loads(saved, ExecutionRecord)
                if local.status == record.status:
                    record = local
        if reason is None and older_than is not None and row.get("RMT"):
            rmt = parse_time(row["RMT"])
            if rmt is not None and now - rmt > older_than:
                reason = f"no update since {rmt.isoformat()}"
        if reason is None:
            if manifest is not None:
                manifest.close()
            continue
        planned.append((transition(record, Status.aborted, f"Aborted: {reason}", now), reason, manifest))
    if not planned:
        return []
    # one compare-and-set for all of them: an execution that changed status since the query (it finished,
    # or another process aborted it) is left alone
    result = ports.catalog.apply(plan_abort([new for new, _, _ in planned]))
    written = {r["RID"] for r in result.inserted[0]}
    aborted: list[ExecutionRecord] = []
    for new, reason, manifest in planned:
        if new.rid in written:
            if manifest is not None:
                manifest.set_state("record", dumps(new, indent=None))
            aborted.append(new)
            if log is not None:
                log.warning("execution aborted", execution_rid=new.rid, reason=reason)
        elif log is not None:
            log.info("execution changed status meanwhile; not aborted", execution_rid=new.rid)
        if manifest is not None:
            manifest.close()
    return aborted
