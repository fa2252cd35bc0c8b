"""The values of metrics and their file format (pure): records, validation, ``metrics.jsonl`` lines.

One logged value is a :class:`MetricValue`; the log is JSON lines (see ``docs/metrics.md``). The logging
hot path (:class:`deriva_ml.execution._metrics.MetricLog`) writes the same line format as
:func:`encode_series`; :func:`scan_series` reads it back, skipping a torn last line. No I/O here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import attrs

from deriva_ml.core.errors import ValidationError
from deriva_ml.core.redact import redact_text

#: Directory (under the execution's working directory) of the live log and the upload snapshots.
LOG_DIR = "metrics"
#: The live log file name (and the name of the uploaded snapshot).
LOG_NAME = METRICS_FILENAME = "metrics.jsonl"
#: Asset_Type of the uploaded snapshot (a seed term of the deriva-ml schema).
METRICS_ASSET_TYPE = "Metrics_File"
METRICS_ASSET_DESCRIPTION = "Training-metric log file (one record per evaluation point)"
#: The optional summary table (``deriva_ml.catalog.schema.execution_metric_table``).
SUMMARY_TABLE = "Execution_Metric"
#: Longest metric name accepted (characters).
MAX_NAME_LENGTH = 200
#: Format identifier of :func:`metrics_for_provenance`.
PROVENANCE_FORMAT = "deriva-ml-metrics/1"

Order = Literal["min", "max"]


class InvalidMetric(ValidationError):
    """A metric name, value or step that cannot be logged (the message names it and what is valid)."""


@attrs.frozen
class MetricValue:
    """One logged value: ``name``, ``value`` (finite float), ``step`` (None when logged without one), ``time``."""

    name: str
    value: float
    step: int | None
    time: datetime


@attrs.frozen
class MetricSummary:
    """What is known of one metric of one execution: the last value (its step and time), min, max, count."""

    name: str
    last_value: float
    last_step: int | None
    last_time: datetime | None
    min: float
    max: float
    count: int

    def best(self, order: Order) -> float:
        """The best value for ``order`` (``"min"``: the smallest, ``"max"``: the largest)."""
        return self.min if order == "min" else self.max


# ------------------------------------------------------------------------------------------ validation


def check_name(name: object) -> str:
    """The name to record for ``name`` (secrets redacted), or :class:`InvalidMetric`.

    Valid: a non-empty ``str`` of at most :data:`MAX_NAME_LENGTH` characters without control characters.
    """
    if not isinstance(name, str):
        raise InvalidMetric(f"metric name {name!r} is a {type(name).__name__}; a metric name is a non-empty str")
    if not name or not name.strip():
        raise InvalidMetric(f"metric name {name!r} is empty; give a name such as 'loss'")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidMetric(f"metric name {name[:40]!r}... has {len(name)} characters; at most {MAX_NAME_LENGTH}")
    bad = [c for c in name if ord(c) < 32 or 127 <= ord(c) < 160 or c in "\u2028\u2029"]
    if bad:
        raise InvalidMetric(f"metric name {name!r} contains control character(s) {bad!r}; use printable text")
    return redact_text(name)


def check_value(name: str, value: object) -> float:
    """``value`` as a finite float, or :class:`InvalidMetric` naming the metric and the value."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, bytes)):
        raise InvalidMetric(
            f"metric {name!r}: value {value!r} ({type(value).__name__}) is not a number; give a finite int or float"
        )
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidMetric(
            f"metric {name!r}: value {value!r} ({type(value).__name__}) is not a finite number: {exc}"
        ) from None
    if not math.isfinite(v):
        raise InvalidMetric(f"metric {name!r}: value {value!r} is not finite; NaN and infinities are not recorded")
    return v


def check_step(name: str, step: object) -> int | None:
    """``step`` as a non-negative int (or None), or :class:`InvalidMetric`."""
    if step is None:
        return None
    if isinstance(step, bool):
        raise InvalidMetric(f"metric {name!r}: step {step!r} is a bool; give a non-negative int")
    if not isinstance(step, int):
        try:
            import operator

            step = operator.index(step)  # type: ignore[arg-type]  # numpy integers
        except TypeError:
            raise InvalidMetric(
                f"metric {name!r}: step {step!r} ({type(step).__name__}) is not an int; give a non-negative int"
            ) from None
    assert isinstance(step, int)
    if step < 0:
        raise InvalidMetric(f"metric {name!r}: step {step} is negative; steps are non-negative ints")
    return int(step)


# -------------------------------------------------------------------------------------------- encoding


#: The Unix epoch; record times are whole microseconds since it (exact, and an int is cheap to format).
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def to_us(t: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime (exact)."""
    return (t - EPOCH) // _US


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def _line(name_json: str, value: float, step: int | None, t_us: int) -> str:
    return f'{{"name":{name_json},"value":{value!r},"step":{"null" if step is None else step},"time_us":{t_us}}}\n'


def encode_series(series: Iterable[MetricValue]) -> bytes:
    """The JSON-lines form of ``series`` (the format of ``metrics.jsonl``; see ``docs/metrics.md``)."""
    return "".join(
        _line(json.dumps(m.name, ensure_ascii=False), m.value, m.step, to_us(m.time)) for m in series
    ).encode("utf-8")


def _decode(data: bytes) -> tuple[list[bytes], list[Any]]:
    """The non-blank lines of ``data`` and their JSON documents (None for a line that is not JSON).

    The common case — every line whole — is one JSON decode of them all."""
    lines = [x for x in data.split(b"\n") if x.strip()]
    docs: list[Any] | None
    try:
        docs = json.loads(b"[" + b",".join(lines) + b"]")
    except ValueError:  # a torn or garbled line (includes UnicodeDecodeError): line by line
        docs = None
    if docs is None or len(docs) != len(lines):
        docs = []
        for raw in lines:
            try:
                docs.append(json.loads(raw))
            except ValueError:
                docs.append(None)
    return lines, docs


def _records(docs: list[Any]) -> list[MetricValue | None]:
    """Per decoded line, its record, or None when it is not a complete, valid one (one tight loop: this
    runs once per value read back)."""
    out: list[MetricValue | None] = []
    append = out.append
    last_t: Any = None
    when = EPOCH  # set by the first record (last_t None never equals an int)
    for doc in docs:
        try:
            name, value, t = doc["name"], doc["value"], doc["time_us"]
            step = doc.get("step")
        except (TypeError, KeyError, IndexError, AttributeError):
            append(None)
            continue
        if type(value) is int:
            try:
                value = float(value)
            except OverflowError:
                value = None
        if (
            type(name) is not str
            or not name
            or type(value) is not float
            or value - value != 0.0  # NaN or an infinity
            or (step is not None and (type(step) is not int or step < 0))
            or type(t) is not int
        ):
            append(None)
            continue
        if t != last_t:  # values logged together share a time: one datetime for them
            try:
                when = from_us(t)
            except OverflowError:
                append(None)
                continue
            last_t = t
        append(MetricValue(name, value, step, when))
    return out


def scan_series(data: bytes) -> tuple[tuple[MetricValue, ...], bytes]:
    """The values recorded in ``data`` and the bytes of just their lines (what an upload snapshot holds).

    A line that is not a complete record (the torn last line of a killed process, or that line after a
    restart appended behind it) is skipped.
    """
    lines, docs = _decode(data)
    records = _records(docs)
    kept = [raw for raw, rec in zip(lines, records, strict=True) if rec is not None]
    return tuple(rec for rec in records if rec is not None), b"".join(x + b"\n" for x in kept)


def parse_series(data: bytes) -> tuple[MetricValue, ...]:
    """The values recorded in ``data`` (a ``metrics.jsonl``), in the order logged (see :func:`scan_series`)."""
    return tuple(rec for rec in _records(_decode(data)[1]) if rec is not None)


def log_path(working_dir: Path) -> Path:
    """Where an execution's live metrics log is."""
    return working_dir / LOG_DIR / LOG_NAME
