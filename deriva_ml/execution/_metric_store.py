"""The catalog side of metrics (shell): the upload snapshot and the ``Execution_Metric`` summary rows,
the optional table and its backfill, reading series and summaries back, and what ``show`` gathers.

Takes :class:`~deriva_ml.context.Ports` (never the facade). Requests are constant in the number of values:
one query and at most one batch per upload; one or two queries plus one object read per execution to read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deriva_ml.catalog.port import create_missing_tables
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.effects import Batch, Insert
from deriva_ml.core.errors import ValidationError
from deriva_ml.core.records import ExecutionRecord
from deriva_ml.core.rid import parse_rid
from deriva_ml.execution._metric_format import (
    LOG_DIR,
    METRICS_ASSET_DESCRIPTION,
    METRICS_ASSET_TYPE,
    METRICS_FILENAME,
    SUMMARY_TABLE,
    MetricSummary,
    MetricValue,
    Order,
    check_name,
    log_path,
    parse_series,
    scan_series,
)
from deriva_ml.execution._metric_summary import (
    plan_summary_rows,
    rank_executions,
    summarize,
    summary_from_row,
    summary_json,
    summary_row,
)
from deriva_ml.store._files import atomic_file

if TYPE_CHECKING:
    from deriva_ml.context import Ports
    from deriva_ml.services.schema import SchemaService

# -------------------------------------------------------------------------------------------- upload


def has_summary_table(ports: Ports) -> bool:
    return ports.catalog.model().table(ML_SCHEMA, SUMMARY_TABLE) is not None


def add_summary_table(ports: Ports) -> bool:
    """Create the optional ``Execution_Metric`` table when the catalog lacks it (True when created), and
    fill it from the ``metrics.jsonl`` assets uploaded before (see :func:`backfill_summaries`)."""
    from deriva_ml.catalog.schema import execution_metric_table

    if not create_missing_tables(ports.catalog, [execution_metric_table()]):
        return False
    backfill_summaries(ports)
    return True


def backfill_summaries(ports: Ports) -> int:
    """Summary rows for every execution that uploaded a ``metrics.jsonl`` (its largest); returns how many
    executions. Two queries, one object read per such execution, one batch (on-conflict-skip: rows that
    exist stay)."""
    rows = ports.catalog.query(ML_SCHEMA, "Execution_Metadata", {"Filename": METRICS_FILENAME})
    if not rows:
        return 0
    by_rid = {r["RID"]: r for r in rows}
    links = ports.catalog.query(ML_SCHEMA, "Execution_Metadata_Execution", {"Execution_Metadata": sorted(by_rid)})
    best: dict[str, dict[str, Any]] = {}
    for link in links:
        row = by_rid.get(link["Execution_Metadata"])
        cur = best.get(link["Execution"])
        if row is not None and (cur is None or int(row.get("Length") or 0) > int(cur.get("Length") or 0)):
            best[link["Execution"]] = row
    inserts = [summary_row(exe, s) for exe, row in sorted(best.items()) for s in summarize(_fetch(ports, row))]
    if inserts:
        ports.catalog.apply(Batch((Insert(ML_SCHEMA, SUMMARY_TABLE, inserts, on_conflict_skip=True),)))
    return len(best)


def _snapshot(working_dir: Path, series: Sequence[MetricValue], data: bytes) -> Path:
    """The upload snapshot of ``series``: ``metrics/upload/<count>/metrics.jsonl`` (written once, atomically).

    The log only grows, so the count names the content: a retry after a crash finds the same file (same
    bytes, same manifest entry, uploaded once); values logged after an upload make a new, larger snapshot.
    """
    dest = working_dir / LOG_DIR / "upload" / str(len(series)) / METRICS_FILENAME
    if not dest.is_file():
        with atomic_file(dest) as f:
            f.write(data)
    return dest


def stage_metrics_upload(
    ports: Ports,
    schema: SchemaService,
    execution_rid: str,
    working_dir: Path,
    register: Callable[[Path, str], None],
) -> int:
    """The metrics part of an execution's upload; returns the number of values staged (0: nothing logged).

    Writes the snapshot, hands it to ``register(path, asset_type)`` (the execution registers and seals it
    as an ``Execution_Metadata`` output, uploaded with the others), and brings the summary rows up to date
    when the catalog has ``Execution_Metric`` (an embedded catalog gets the table on first use): one query
    and at most one batch, whatever the number of values.
    """
    series, data = scan_series(log_path(working_dir).read_bytes()) if log_path(working_dir).is_file() else ((), b"")
    if not series:
        return 0
    schema.add_term("Asset_Type", METRICS_ASSET_TYPE, METRICS_ASSET_DESCRIPTION, exists_ok=True)
    register(_snapshot(working_dir, series, data), METRICS_ASSET_TYPE)
    if not has_summary_table(ports):
        if not ports.host.embedded:
            return len(series)
        add_summary_table(ports)
    existing = ports.catalog.query(ML_SCHEMA, SUMMARY_TABLE, {"Execution": execution_rid})
    batch = plan_summary_rows(execution_rid, summarize(series), existing)
    if batch is not None:
        ports.catalog.apply(batch)
    return len(series)


# ------------------------------------------------------------------------------------------- reading


def _metrics_rows(ports: Ports, rids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per execution, its largest ``metrics.jsonl`` Execution_Metadata row (one or two requests)."""
    if not rids:
        return {}
    links = ports.catalog.query(
        ML_SCHEMA,
        "Execution_Metadata_Execution",
        {"Execution": list(rids)},
        columns=["Execution_Metadata", "Execution"],
    )
    owner: dict[str, list[str]] = {}
    for link in links:
        owner.setdefault(link["Execution_Metadata"], []).append(link["Execution"])
    if not owner:
        return {}
    rows = ports.catalog.query(ML_SCHEMA, "Execution_Metadata", {"RID": sorted(owner), "Filename": METRICS_FILENAME})
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        for exe in owner.get(row["RID"], []):
            cur = best.get(exe)
            if cur is None or int(row.get("Length") or 0) > int(cur.get("Length") or 0):
                best[exe] = row  # the log only grows: the largest snapshot holds every value
    return best


def _fetch(ports: Ports, row: Mapping[str, Any]) -> tuple[MetricValue, ...]:
    md5 = row.get("MD5") or ""
    dest = ports.dirs.cache_dir / "metrics" / f"{md5}.jsonl"
    if not dest.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        ports.store.get(row["URL"], dest, md5=md5 or None)
    return parse_series(dest.read_bytes())


def read_series(ports: Ports, execution_rid: str, local_dir: Path | None = None) -> tuple[MetricValue, ...]:
    """The full series of an execution: from its uploaded ``metrics.jsonl`` (the largest, if several), else
    from the local log in ``local_dir`` (an execution not uploaded yet), else empty."""
    rid = str(parse_rid(execution_rid, "execution rid"))
    row = _metrics_rows(ports, [rid]).get(rid)
    remote = _fetch(ports, row) if row is not None else ()
    if local_dir is not None and _may_hold_more(log_path(local_dir), row):
        local = parse_series(log_path(local_dir).read_bytes())
        if len(local) > len(remote):
            return local
    return remote


def _may_hold_more(local: Path, row: Mapping[str, Any] | None) -> bool:
    """Whether the local log may hold values the uploaded snapshot ``row`` lacks. The snapshot is the valid
    lines of this log when uploaded and the log only grows: a log no larger than the snapshot holds the
    same values (the usual case after an upload), so it is not decoded a second time."""
    try:
        size = local.stat().st_size
    except FileNotFoundError:
        return False
    length = row.get("Length") if row is not None else None
    return length is None or size > int(length)


def read_summaries(
    ports: Ports, rids: Sequence[str], metric: str | None = None
) -> dict[str, tuple[MetricSummary, ...]]:
    """Summaries per execution RID: one query of ``Execution_Metric`` when the catalog has it, else computed
    from each execution's ``metrics.jsonl`` (one object read per execution that has one)."""
    out: dict[str, tuple[MetricSummary, ...]] = {}
    if not rids:
        return out
    if has_summary_table(ports):
        where: dict[str, Any] = {"Execution": list(rids)}
        if metric is not None:
            where["Name"] = metric
        acc: dict[str, list[MetricSummary]] = {}
        for row in ports.catalog.query(ML_SCHEMA, SUMMARY_TABLE, where, order_by=["RID"]):
            acc.setdefault(str(row["Execution"]), []).append(summary_from_row(row))
        return {k: tuple(v) for k, v in acc.items()}
    for rid, row in _metrics_rows(ports, list(rids)).items():
        sums = summarize(_fetch(ports, row))
        out[rid] = tuple(s for s in sums if metric is None or s.name == metric)
    return out


def select_executions(
    ports: Ports,
    records: Sequence[ExecutionRecord],
    *,
    metric: str | None,
    order: Order | None,
    min_value: float | None,
    max_value: float | None,
    limit: int | None,
) -> list[ExecutionRecord]:
    """``records`` filtered and sorted by the last value of ``metric`` (see :func:`rank_executions`)."""
    if metric is None:
        if min_value is not None or max_value is not None:
            raise ValidationError("min_value/max_value need metric= (the metric whose last value is compared)")
        return list(records) if limit is None else list(records)[: max(0, limit)]
    name = check_name(metric)
    sums = read_summaries(ports, [str(r.rid) for r in records], name)
    last = {rid: s[0] for rid, s in sums.items() if s}
    return rank_executions(records, last, order=order, min_value=min_value, max_value=max_value, limit=limit)


def show_metrics(ports: Ports, execution_rid: str, outputs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What ``deriva-ml show`` prints of an execution's metrics (JSON-able): one query of the summary table
    when the catalog has it; else, when ``outputs`` (already gathered) hold a ``metrics.jsonl``, its summaries;
    else nothing (no request)."""
    if not has_summary_table(ports) and not any(
        o.get("table") == "Execution_Metadata" and o.get("filename") == METRICS_FILENAME for o in outputs
    ):
        return []
    found = read_summaries(ports, [execution_rid]).get(str(execution_rid), ())
    return [summary_json(s) for s in found]
