"""Summaries of metric values (pure): per-name last/min/max/count, the ``Execution_Metric`` row plan,
ranking executions by a metric, the provenance form, and the text ``deriva-ml show`` prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs

from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.effects import Batch, Effect, Insert, Update
from deriva_ml.core.errors import ValidationError
from deriva_ml.core.records import ExecutionRecord
from deriva_ml.execution._metric_format import (
    PROVENANCE_FORMAT,
    SUMMARY_TABLE,
    MetricSummary,
    MetricValue,
    Order,
)

# ------------------------------------------------------------------------------------------ summaries


def summarize(series: Iterable[MetricValue]) -> tuple[MetricSummary, ...]:
    """One summary per name, in the order names were first logged; "last" is the last value logged."""
    acc: dict[str, list[Any]] = {}
    for m in series:
        a = acc.get(m.name)
        if a is None:
            acc[m.name] = [m.value, m.step, m.time, m.value, m.value, 1]
        else:
            a[0], a[1], a[2] = m.value, m.step, m.time
            if m.value < a[3]:
                a[3] = m.value
            if m.value > a[4]:
                a[4] = m.value
            a[5] += 1
    return tuple(
        MetricSummary(name=n, last_value=a[0], last_step=a[1], last_time=a[2], min=a[3], max=a[4], count=a[5])
        for n, a in acc.items()
    )


def summary_row(execution_rid: str, s: MetricSummary) -> dict[str, Any]:
    return {
        "Execution": execution_rid,
        "Name": s.name,
        "Last_Value": s.last_value,
        "Last_Step": s.last_step,
        "Last_Time": s.last_time.isoformat() if s.last_time else None,
        "Min": s.min,
        "Max": s.max,
        "Count": s.count,
    }


def summary_from_row(row: Mapping[str, Any]) -> MetricSummary:
    """A :class:`MetricSummary` from an ``Execution_Metric`` row."""
    t = row.get("Last_Time")
    when = datetime.fromisoformat(t) if isinstance(t, str) and t else None
    if when is not None and when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    step = row.get("Last_Step")
    return MetricSummary(
        name=str(row["Name"]),
        last_value=float(row["Last_Value"]),
        last_step=None if step is None else int(step),
        last_time=when,
        min=float(row["Min"]),
        max=float(row["Max"]),
        count=int(row["Count"]),
    )


def _same(row: Mapping[str, Any], s: MetricSummary) -> bool:
    try:
        return summary_from_row(row) == s or (
            # a backend may keep the time with less precision: compare everything else, and the time to the ms
            attrs.evolve(summary_from_row(row), last_time=None) == attrs.evolve(s, last_time=None)
            and _ms(summary_from_row(row).last_time) == _ms(s.last_time)
        )
    except (KeyError, TypeError, ValueError):
        return False


def _ms(t: datetime | None) -> int | None:
    return None if t is None else round(t.timestamp() * 1000)


def plan_summary_rows(
    execution_rid: str,
    summaries: Sequence[MetricSummary],
    existing: Sequence[Mapping[str, Any]],
    schema: str = ML_SCHEMA,
) -> Batch | None:
    """The batch that makes ``Execution_Metric`` hold ``summaries`` for ``execution_rid`` (None: it already does).

    ``existing`` are the execution's rows now. New names are inserted (on-conflict-skip: a retry after a
    crash writes nothing twice), changed ones updated by RID, equal ones left alone.
    """
    by_name = {str(r.get("Name")): r for r in existing}
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for s in summaries:
        row = by_name.get(s.name)
        if row is None:
            inserts.append(summary_row(execution_rid, s))
        elif not _same(row, s):
            new = summary_row(execution_rid, s)
            del new["Execution"], new["Name"]
            updates.append({"RID": row["RID"], **new})
    effects: list[Effect] = []
    if inserts:
        effects.append(Insert(schema, SUMMARY_TABLE, inserts, on_conflict_skip=True))
    if updates:
        effects.append(Update(schema, SUMMARY_TABLE, updates))
    return Batch(tuple(effects)) if effects else None


def rank_executions(
    records: Sequence[ExecutionRecord],
    last: Mapping[str, MetricSummary],
    *,
    order: Order | None = "min",
    min_value: float | None = None,
    max_value: float | None = None,
    limit: int | None = None,
) -> list[ExecutionRecord]:
    """``records`` that have a summary in ``last`` (by RID) whose last value lies in ``[min_value, max_value]``,
    sorted by that value (``order``; None keeps the given order, ties by RID), at most ``limit``."""
    if order not in ("min", "max", None):
        raise ValidationError(f"order={order!r}; valid: 'min', 'max' or None")
    kept = []
    for r in records:
        s = last.get(str(r.rid))
        if s is None:
            continue
        if min_value is not None and s.last_value < min_value:
            continue
        if max_value is not None and s.last_value > max_value:
            continue
        kept.append((s.last_value, str(r.rid), r))
    if order is not None:
        kept.sort(key=lambda x: (x[0] if order == "min" else -x[0], x[1]))
    out = [r for _, _, r in kept]
    return out if limit is None else out[: max(0, limit)]


def metrics_for_provenance(series: Iterable[MetricValue]) -> dict[str, Any]:
    """The metrics of one execution as plain JSON data, for the canonical provenance record and exports.

    ``{"format": "deriva-ml-metrics/1", "summary": {name: {last_value, last_step, last_time, min, max,
    count}}, "series": {name: [[step, value, time], ...]}}`` with times as ISO 8601 UTC strings; names in
    the order first logged, values in the order logged. Pure: the same series gives the same dict.
    """
    values = tuple(series)
    out_series: dict[str, list[list[Any]]] = {}
    for m in values:
        out_series.setdefault(m.name, []).append([m.step, m.value, m.time.isoformat()])
    summary = {s.name: {k: v for k, v in summary_json(s).items() if k != "name"} for s in summarize(values)}
    return {"format": PROVENANCE_FORMAT, "summary": summary, "series": out_series}


# ----------------------------------------------------------------------------------------------- show


def summary_json(s: MetricSummary) -> dict[str, Any]:
    return {
        "name": s.name,
        "last_value": s.last_value,
        "last_step": s.last_step,
        "last_time": s.last_time.isoformat() if s.last_time else None,
        "min": s.min,
        "max": s.max,
        "count": s.count,
    }


def _num(v: Any) -> str:
    return "" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v)


def render_metrics(metrics: Sequence[Mapping[str, Any]]) -> list[str]:
    """``show``'s metric lines: name, last value (and step), count, min, max."""
    width = max((len(m["name"]) for m in metrics), default=0)
    out = []
    for m in metrics:
        step = f" @ step {m['last_step']}" if m.get("last_step") is not None else ""
        out.append(
            f"  {m['name']:{width}}  last {_num(m['last_value'])}{step}  count {m['count']}  "
            f"min {_num(m['min'])}  max {_num(m['max'])}"
        )
    return out
