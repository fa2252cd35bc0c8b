"""Metrics: numeric values with a name, an optional step and a time, logged by a run and kept as provenance.

This module is the logging hot path, :class:`MetricLog`: each call validates, formats one JSON line per
value and appends it to ``<working_dir>/metrics/metrics.jsonl`` with ONE ``os.write`` on an ``O_APPEND``
descriptor: no Python buffer, so everything logged before a ``kill -9`` is in the file (the OS keeps it;
power loss is not covered). A torn last line is ignored when read. See ``docs/metrics.md``.

The other jobs live beside it, and their names are importable from here too:

- :mod:`~deriva_ml.execution._metric_format` (pure): the records, validation, the ``metrics.jsonl`` format;
- :mod:`~deriva_ml.execution._metric_summary` (pure): summaries, the summary-row plan, ranking, the
  provenance form, ``show``'s text;
- :mod:`~deriva_ml.execution._metric_store` (shell, on :class:`~deriva_ml.context.Ports`): the upload
  snapshot and summary rows (:func:`stage_metrics_upload`, the one call ``upload_execution_outputs``
  makes), the optional ``Execution_Metric`` table and its backfill, reading series and summaries back.
"""

from __future__ import annotations

import json
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from deriva_ml.execution._metric_format import (
    EPOCH,
    LOG_DIR,
    LOG_NAME,
    MAX_NAME_LENGTH,
    METRICS_ASSET_TYPE,
    METRICS_FILENAME,
    PROVENANCE_FORMAT,
    SUMMARY_TABLE,
    InvalidMetric,
    MetricSummary,
    MetricValue,
    Order,
    _line,
    check_name,
    check_step,
    check_value,
    encode_series,
    from_us,
    log_path,
    parse_series,
    scan_series,
    to_us,
)
from deriva_ml.execution._metric_store import (
    add_summary_table,
    backfill_summaries,
    has_summary_table,
    read_series,
    read_summaries,
    select_executions,
    show_metrics,
    stage_metrics_upload,
)
from deriva_ml.execution._metric_summary import (
    _num,
    metrics_for_provenance,
    plan_summary_rows,
    rank_executions,
    render_metrics,
    summarize,
    summary_from_row,
)
from deriva_ml.execution._metric_summary import summary_json as _summary_json

__all__ = [
    "EPOCH",
    "LOG_DIR",
    "LOG_NAME",
    "MAX_NAME_LENGTH",
    "METRICS_ASSET_TYPE",
    "METRICS_FILENAME",
    "PROVENANCE_FORMAT",
    "SUMMARY_TABLE",
    "InvalidMetric",
    "MetricLog",
    "MetricSummary",
    "MetricValue",
    "Order",
    "_num",
    "_summary_json",
    "add_summary_table",
    "backfill_summaries",
    "check_name",
    "check_step",
    "check_value",
    "encode_series",
    "from_us",
    "has_summary_table",
    "log_path",
    "metrics_for_provenance",
    "parse_series",
    "plan_summary_rows",
    "rank_executions",
    "read_series",
    "read_summaries",
    "render_metrics",
    "scan_series",
    "select_executions",
    "show_metrics",
    "stage_metrics_upload",
    "summarize",
    "summary_from_row",
    "to_us",
]


class MetricLog:
    """The append-only metrics log of one execution (see the module docstring).

    ``clock`` gives the time of each value: a function returning an aware ``datetime`` (the handle's
    clock), or, with ``ns=True``, a function returning nanoseconds since the epoch (``time.time_ns``: the
    fast path the execution uses with the default clock). The file is opened on the first value; the descriptor is closed
    when this object is collected (or by :meth:`close`).
    """

    def __init__(self, path: Path, clock: Callable[[], Any], *, ns: bool = False) -> None:
        self.path = path
        self._ns: Callable[[], int] | None = clock if ns else None
        self._clock: Callable[[], datetime] = clock
        self._fd: int | None = None
        self._lock = threading.Lock()
        #: validated names -> their JSON-encoded form (validation and encoding once per name)
        self._names: dict[str, str] = {}
        self._finalizer: Any = None

    def _open(self) -> int:
        with self._lock:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
                # a torn last line (a kill mid-write) is closed so the next record starts on its own line
                size = os.fstat(fd).st_size
                if size:
                    with open(self.path, "rb") as f:
                        f.seek(size - 1)
                        if f.read(1) != b"\n":
                            os.write(fd, b"\n")
                self._fd = fd
                self._finalizer = weakref.finalize(self, os.close, fd)
            return self._fd

    def _name(self, name: Any) -> str:
        enc = json.dumps(check_name(name), ensure_ascii=False)
        self._names[name] = enc
        return enc

    def log(self, name: str, value: float, step: int | None = None) -> None:
        """Append one value (validated first: nothing is written for an invalid one)."""
        # the hot path: a cached name, a finite float (v - v is 0.0 only for finite v), an int step or none
        enc = self._names.get(name) if type(name) is str else None
        if enc is None:
            enc = self._name(name)
        if type(value) is not float or value - value != 0.0:
            value = check_value(name, value)
        if step is None:
            s: Any = "null"
        elif type(step) is int and step >= 0:
            s = step
        else:
            s = check_step(name, step)
        t = self._ns() // 1000 if self._ns is not None else to_us(self._clock())
        line = f'{{"name":{enc},"value":{value!r},"step":{s},"time_us":{t}}}\n'
        os.write(self._fd if self._fd is not None else self._open(), line.encode())

    def log_many(self, values: Mapping[str, float], step: int | None = None) -> None:
        """Append several values at one step and one time, with one write (all validated first)."""
        if not isinstance(values, Mapping):
            raise InvalidMetric(f"log_metrics takes a mapping of name to value, got {type(values).__name__}")
        s = step if step is None or (type(step) is int and step >= 0) else check_step("(all)", step)
        encoded = []
        for name, value in values.items():
            enc = self._names.get(name) if type(name) is str else None
            if enc is None:
                enc = self._name(name)
            v = value if type(value) is float and value - value == 0.0 else check_value(name, value)
            encoded.append((enc, v))
        if not encoded:
            return
        t = self._ns() // 1000 if self._ns is not None else to_us(self._clock())
        data = "".join(_line(enc, v, s, t) for enc, v in encoded).encode("utf-8")
        os.write(self._fd if self._fd is not None else self._open(), data)

    def read(self) -> tuple[MetricValue, ...]:
        """Everything logged so far (also by earlier processes of this execution)."""
        try:
            return parse_series(self.path.read_bytes())
        except FileNotFoundError:
            return ()

    def close(self) -> None:
        with self._lock:
            if self._finalizer is not None:
                self._finalizer()
                self._finalizer = None
            self._fd = None
