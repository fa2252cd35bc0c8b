"""Metrics: numeric values with a name, an optional step and a time, logged by a run and kept as provenance.

Three parts (see ``docs/metrics.md`` for the format and the guarantees):

- **Logging** (:class:`MetricLog`): each call validates, formats one JSON line per value and appends it to
  ``<working_dir>/metrics/metrics.jsonl`` with ONE ``os.write`` on an ``O_APPEND`` descriptor: no Python
  buffer, so everything logged before a ``kill -9`` is in the file (the OS keeps it; power loss is not
  covered). A torn last line is ignored when read.
- **Upload** (:func:`stage_metrics_upload`, the one call ``upload_execution_outputs`` makes): a snapshot of
  the valid lines becomes an ``Execution_Metadata`` asset (type ``Metrics_File``, file ``metrics.jsonl``),
  uploaded with the other outputs, and — when the catalog has the optional ``Execution_Metric`` table — one
  summary row per name is written: one query and one batch whatever the number of values.
- **Reading** (:func:`read_series`, :func:`read_summaries`, :func:`select_executions`): the series from the
  asset (or the local log before upload), summaries from the table (or computed from the series).

Pure parts (validation, encoding, parsing, summaries, the summary-row plan, ranking, the provenance form)
take values and return values; the shell parts take :class:`~deriva_ml.context.Ports`, never the facade.
"""

from __future__ import annotations

import json
import math
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

from deriva_ml.catalog.port import create_missing_tables
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.effects import Batch, Effect, Insert, Update
from deriva_ml.core.errors import ValidationError
from deriva_ml.core.records import ExecutionRecord
from deriva_ml.core.redact import redact_text
from deriva_ml.core.rid import parse_rid

if TYPE_CHECKING:
    from deriva_ml.context import Ports
    from deriva_ml.services.schema import SchemaService

__all__ = [
    "LOG_DIR",
    "LOG_NAME",
    "MAX_NAME_LENGTH",
    "METRICS_ASSET_TYPE",
    "METRICS_FILENAME",
    "SUMMARY_TABLE",
    "InvalidMetric",
    "MetricLog",
    "MetricSummary",
    "MetricValue",
    "check_name",
    "check_step",
    "check_value",
    "encode_series",
    "metrics_for_provenance",
    "parse_series",
    "plan_summary_rows",
    "rank_executions",
    "scan_series",
    "summarize",
]

#: Directory (under the execution's working directory) of the live log and the upload snapshots.
LOG_DIR = "metrics"
#: The live log file name (and the name of the uploaded snapshot).
LOG_NAME = METRICS_FILENAME = "metrics.jsonl"
#: Asset_Type of the uploaded snapshot (a seed term of the deriva-ml schema).
METRICS_ASSET_TYPE = "Metrics_File"
_METRICS_ASSET_DESCRIPTION = "Training-metric log file (one record per evaluation point)"
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


def _record(doc: Any, cache: list[Any]) -> MetricValue | None:
    """The record of one decoded line, or None when it is not a complete, valid one."""
    try:
        name, value, t = doc["name"], doc["value"], doc["time_us"]
        step = doc.get("step")
    except (TypeError, KeyError, IndexError, AttributeError):
        return None
    if type(name) is not str or not name:
        return None
    if type(value) is float:
        if value - value != 0.0:  # NaN or an infinity
            return None
    elif type(value) is int:
        try:
            value = float(value)
        except OverflowError:
            return None
    else:
        return None
    if step is not None and (type(step) is not int or step < 0):
        return None
    if type(t) is not int:
        return None
    if t != cache[0]:  # values logged together share a time: one datetime for them
        try:
            cache[1] = from_us(t)
        except OverflowError:
            return None
        cache[0] = t
    return MetricValue(name, value, step, cache[1])


def scan_series(data: bytes) -> tuple[tuple[MetricValue, ...], bytes]:
    """The values recorded in ``data`` and the bytes of just their lines (what an upload snapshot holds).

    A line that is not a complete record (the torn last line of a killed process, or that line after a
    restart appended behind it) is skipped. The common case — every line whole — is one JSON decode.
    """
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
    cache: list[Any] = [None, None]
    out: list[MetricValue] = []
    kept: list[bytes] = []
    for raw, doc in zip(lines, docs, strict=True):
        rec = _record(doc, cache)
        if rec is not None:
            out.append(rec)
            kept.append(raw)
    return tuple(out), b"".join(x + b"\n" for x in kept)


def parse_series(data: bytes) -> tuple[MetricValue, ...]:
    """The values recorded in ``data`` (a ``metrics.jsonl``), in the order logged (see :func:`scan_series`)."""
    return scan_series(data)[0]


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


def _summary_row(execution_rid: str, s: MetricSummary) -> dict[str, Any]:
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
            inserts.append(_summary_row(execution_rid, s))
        elif not _same(row, s):
            new = _summary_row(execution_rid, s)
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
    summary = {s.name: {k: v for k, v in _summary_json(s).items() if k != "name"} for s in summarize(values)}
    return {"format": PROVENANCE_FORMAT, "summary": summary, "series": out_series}


# ------------------------------------------------------------------------------------------- logging


def log_path(working_dir: Path) -> Path:
    """Where an execution's live metrics log is."""
    return working_dir / LOG_DIR / LOG_NAME


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
    inserts = [_summary_row(exe, s) for exe, row in sorted(best.items()) for s in summarize(_fetch(ports, row))]
    if inserts:
        ports.catalog.apply(Batch((Insert(ML_SCHEMA, SUMMARY_TABLE, inserts, on_conflict_skip=True),)))
    return len(best)


def _snapshot(working_dir: Path, series: Sequence[MetricValue], data: bytes) -> Path:
    """The upload snapshot of ``series``: ``metrics/upload/<count>/metrics.jsonl`` (written once, atomically).

    The log only grows, so the count names the content: a retry after a crash finds the same file (same
    bytes, same manifest entry, uploaded once); values logged after an upload make a new, larger snapshot.
    """
    dest = working_dir / LOG_DIR / "upload" / str(len(series)) / METRICS_FILENAME
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{METRICS_FILENAME}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, dest)
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
    schema.add_term("Asset_Type", METRICS_ASSET_TYPE, _METRICS_ASSET_DESCRIPTION, exists_ok=True)
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
    if local_dir is not None:
        local = parse_series(log_path(local_dir).read_bytes()) if log_path(local_dir).is_file() else ()
        if len(local) > len(remote):
            return local
    return remote


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


# ----------------------------------------------------------------------------------------------- show


def _summary_json(s: MetricSummary) -> dict[str, Any]:
    return {
        "name": s.name,
        "last_value": s.last_value,
        "last_step": s.last_step,
        "last_time": s.last_time.isoformat() if s.last_time else None,
        "min": s.min,
        "max": s.max,
        "count": s.count,
    }


def show_metrics(ports: Ports, execution_rid: str, outputs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What ``deriva-ml show`` prints of an execution's metrics (JSON-able): one query of the summary table
    when the catalog has it; else, when ``outputs`` (already gathered) hold a ``metrics.jsonl``, its summaries;
    else nothing (no request)."""
    if not has_summary_table(ports) and not any(
        o.get("table") == "Execution_Metadata" and o.get("filename") == METRICS_FILENAME for o in outputs
    ):
        return []
    found = read_summaries(ports, [execution_rid]).get(str(execution_rid), ())
    return [_summary_json(s) for s in found]


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
