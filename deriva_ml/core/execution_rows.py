"""Execution rows to records (pure): the catalog's ``Execution`` row read as an :class:`ExecutionRecord`,
its times and durations parsed, and a local record caught up with a status the catalog holds."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from deriva_ml.core.errors import ValidationError
from deriva_ml.core.records import ExecutionRecord, StatusChange
from deriva_ml.core.status import STATUS_ORDER, TERMINAL, Status


def parse_time(value: Any) -> datetime | None:
    """A timestamp (aware; naive ones are UTC) from a datetime or ISO text; None when unreadable."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        t = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


_REFERENCE_DURATION = re.compile(
    r"^\s*([0-9]+(?:\.[0-9]*)?)H\s*([0-9]+(?:\.[0-9]*)?)min\s*([0-9]+(?:\.[0-9]*)?)sec\s*$"
)


def parse_duration(text: Any) -> float | None:
    """Seconds from an ``Execution.Duration``: ours (``H:MM:SS.ffffff``) or the reference package's
    (``"0.0H 0.0min 0.1462sec"``); None when absent or unreadable."""
    if not text:
        return None
    m = _REFERENCE_DURATION.match(str(text))
    if m:
        return float(m.group(1)) * 3600 + float(m.group(2)) * 60 + float(m.group(3))
    try:
        h, m_, s = str(text).split(":")
        return int(h) * 3600 + int(m_) * 60 + float(s)
    except ValueError:
        return None


def record_from_row(row: Mapping[str, Any]) -> ExecutionRecord:
    """The record of an Execution row. A row without a status is Created; a status that is not an execution
    status raises :class:`ValidationError` naming the RID and the value (it never becomes ``Created``).

    Times: start is the row's creation (RCT); for a finished row the stop is start + Duration. The history
    holds the one change the row shows (to its current status, at its last modification), so rows written
    by the reference package come back with times and a history too.
    """
    status_text = row.get("Status")
    if status_text is None or status_text == "":
        status = Status.created
    else:
        try:
            status = Status.parse(status_text)
        except ValidationError:
            valid = ", ".join(s.value for s in STATUS_ORDER)
            raise ValidationError(
                f"execution {row.get('RID')}: Status={status_text!r} in the catalog is not an execution status "
                f"(valid: {valid})"
            ) from None
    start = parse_time(row.get("RCT"))
    dur = parse_duration(row.get("Duration"))
    stop = (
        start + timedelta(seconds=dur)
        if start is not None and dur is not None and status in TERMINAL | {Status.failed}
        else None
    )
    detail = row.get("Status_Detail") or ""
    at = stop or parse_time(row.get("RMT")) or start
    history = () if at is None or status is Status.created else (StatusChange(None, status, detail, at),)
    return ExecutionRecord(
        rid=row["RID"],
        workflow_rid=row.get("Workflow"),
        description=row.get("Description") or "",
        status=status,
        status_detail=detail,
        start_time=start if stop is not None else None,
        stop_time=stop,
        history=history,
    )


def caught_up(local: ExecutionRecord, row: ExecutionRecord) -> ExecutionRecord:
    """A local record brought up to the status the catalog holds (changed by another handle or process):
    the history gains an *observation* of that status (``from_status=None``: not a transition this handle
    made, since the steps in between are not known here), the times follow the catalog's row."""
    at = row.history[-1].at if row.history else (local.history[-1].at if local.history else None)
    if at is not None and local.history and at < local.history[-1].at:
        at = local.history[-1].at
    change = () if at is None else (StatusChange(None, row.status, row.status_detail, at),)
    return attrs.evolve(
        local,
        status=row.status,
        status_detail=row.status_detail,
        start_time=row.start_time if row.stop_time is not None else local.start_time,
        stop_time=row.stop_time,
        history=(*local.history, *change),
    )
