"""Effects: frozen descriptions of catalog writes that an adapter applies.

Pure planning functions return a :class:`Batch`; a catalog adapter applies it (atomically where the
backend allows) and returns a :class:`BatchResult` with the RIDs it produced. Inside a batch an insert
row may carry a ``label``; a later effect refers to that row's RID with ``Ref(label)`` in any value.
The journal (``deriva_ml.catalog.journal``) stores each applied batch with its result as one JSON line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, TypeAlias

import attrs

from deriva_ml.core.errors import ValidationError
from deriva_ml.core.rid import RID, parse_rid
from deriva_ml.core.status import Status, check_transition

#: Where execution statuses live: only :class:`SetStatus` may write this column (after creation).
STATUS_SCHEMA, STATUS_TABLE, STATUS_COLUMN = "deriva-ml", "Execution", "Status"
#: The status a new Execution row may be inserted with (or no status at all).
INITIAL_STATUS = Status.created
#: Statuses a new Execution row may be inserted with: Created, or Initializing when the row is written after
#: the (always legal) first transition Created -> Initializing, which saves a request per execution.
INSERT_STATUSES = frozenset({Status.created.value, Status.initializing.value})


@attrs.frozen
class Ref:
    """The RID of the row labelled ``label`` that an earlier effect of the same batch inserts."""

    label: str


#: A column value in an effect: JSON scalars, or a Ref resolved when the batch is applied.
Value: TypeAlias = str | int | float | bool | None | Ref
Row: TypeAlias = Mapping[str, Any]


def _rows(value: Iterable[Mapping[str, Any]]) -> tuple[Row, ...]:
    rows = []
    for row in value:
        if not isinstance(row, Mapping):
            raise ValidationError(f"effect row {row!r} must be a mapping of column name to value")
        rows.append(MappingProxyType(dict(row)))
    return tuple(rows)


def _labels(value: Iterable[str | None]) -> tuple[str | None, ...]:
    return tuple(value)


@attrs.frozen(hash=False)
class Insert:
    """Insert ``rows`` into ``schema:table``.

    ``labels`` (empty, or one per row) names rows for later ``Ref``s. ``on_conflict_skip`` makes rows that
    collide with an existing unique key a no-op (ERMrest ``?onconflict=skip``) — the way idempotent writes
    such as association links are expressed.
    """

    schema: str
    table: str
    rows: tuple[Row, ...] = attrs.field(converter=_rows)
    labels: tuple[str | None, ...] = attrs.field(factory=tuple, converter=_labels)
    on_conflict_skip: bool = False

    def __attrs_post_init__(self) -> None:
        if self.labels and len(self.labels) != len(self.rows):
            raise ValidationError(
                f"Insert into {self.schema}:{self.table}: {len(self.labels)} labels for {len(self.rows)} rows"
            )


@attrs.frozen(hash=False)
class Update:
    """Update rows of ``schema:table``: each row holds the ``key`` columns and the columns to set."""

    schema: str
    table: str
    rows: tuple[Row, ...] = attrs.field(converter=_rows)
    key: tuple[str, ...] = ("RID",)

    def __attrs_post_init__(self) -> None:
        for row in self.rows:
            missing = [k for k in self.key if k not in row]
            if missing:
                raise ValidationError(
                    f"Update of {self.schema}:{self.table}: row {dict(row)!r} lacks key column(s) {missing}"
                )
            if len(row) <= len(self.key):
                raise ValidationError(f"Update of {self.schema}:{self.table}: row {dict(row)!r} sets no column")


def _values(value: Iterable[Value]) -> tuple[Value, ...]:
    return tuple(value)


def _where(value: Mapping[str, Value]) -> Mapping[str, Value]:
    return MappingProxyType(dict(value))


def _rid_map(value: Mapping[str, RID]) -> Mapping[str, RID]:
    return MappingProxyType(dict(value))


def _inserted(value: Iterable[Iterable[Mapping[str, Any]]]) -> tuple[tuple[Row, ...], ...]:
    return tuple(_rows(x) for x in value)


@attrs.frozen(hash=False)
class Delete:
    """Delete the rows of ``schema:table`` whose ``column`` equals any of ``values``.

    ``where`` narrows further with column equalities that must all hold.
    """

    schema: str
    table: str
    column: str
    values: tuple[Value, ...] = attrs.field(converter=_values)
    where: Mapping[str, Value] = attrs.field(factory=dict, converter=_where)


def _status_value(value: object) -> Status:
    return Status.parse(value)


def _opt_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValidationError(f"status write value {value!r} must be a string or None")


def _status_rid(value: object) -> RID:
    return parse_rid(value, "SetStatus.rid")


@attrs.frozen
class StatusWrite:
    """One compare-and-set: the row ``rid`` changes from ``expected`` to ``status`` (an edge of the table)."""

    rid: RID = attrs.field(converter=_status_rid)
    expected: Status = attrs.field(converter=_status_value)
    status: Status = attrs.field(converter=_status_value)
    detail: str = attrs.field(default="", converter=str)
    duration: str | None = attrs.field(default=None, converter=_opt_text)

    def __attrs_post_init__(self) -> None:
        check_transition(self.expected, self.status)  # an illegal edge never becomes an effect

    def values(self) -> dict[str, Any]:
        """The columns written when the compare succeeds."""
        # Duration is always written: a retry (Failed -> Pending) clears the failed attempt's duration
        return {STATUS_COLUMN: self.status.value, "Status_Detail": self.detail, "Duration": self.duration}


def _writes(value: Iterable[StatusWrite]) -> tuple[StatusWrite, ...]:
    writes = tuple(value)
    for w in writes:
        if not isinstance(w, StatusWrite):
            raise ValidationError(f"SetStatus: {w!r} is not a StatusWrite")
    rids = [w.rid for w in writes]
    if len(set(rids)) != len(rids):
        raise ValidationError(f"SetStatus: an execution appears twice in one write: {rids}")
    return writes


@attrs.frozen(hash=False)
class SetStatus:
    """Compare-and-set of execution statuses: each write applies only if the row still holds ``expected``.

    Built by :func:`deriva_ml.core.plans.plan_status_update` from records that :func:`transition` produced;
    every adapter refuses a plain :class:`Update` of ``Execution.Status``. A write whose row no longer holds
    ``expected`` lost a race: with ``skip_lost`` it is left out (the result lists the rows written),
    otherwise the adapter raises :class:`~deriva_ml.core.errors.StatusConflict` naming the status the
    catalog holds now.
    """

    writes: tuple[StatusWrite, ...] = attrs.field(converter=_writes)
    skip_lost: bool = False
    schema: str = attrs.field(default=STATUS_SCHEMA, init=False)
    table: str = attrs.field(default=STATUS_TABLE, init=False)


Effect: TypeAlias = Insert | Update | Delete | SetStatus


def check_status_guard(effect: Effect) -> None:
    """Refuse a plain write of ``Execution.Status`` (pure; every adapter calls it for every effect).

    An Insert may set the initial status (``Created``), the first step ``Initializing``, or none; an Update may not touch the column at all:
    status changes are :class:`SetStatus` effects. Values of a SetStatus are valid statuses by construction.
    """
    if isinstance(effect, SetStatus) or effect.schema != STATUS_SCHEMA or effect.table != STATUS_TABLE:
        return
    if isinstance(effect, Insert):
        for row in effect.rows:
            value = row.get(STATUS_COLUMN)
            if value is not None and value not in INSERT_STATUSES:
                raise ValidationError(
                    f"insert into {STATUS_SCHEMA}:{STATUS_TABLE}: Status={value!r} refused; a new execution starts "
                    f"as {INITIAL_STATUS.value!r} (or {Status.initializing.value!r}) and changes status only through "
                    f"transition() (a SetStatus effect)"
                )
    elif isinstance(effect, Update):
        for row in effect.rows:
            if STATUS_COLUMN in row and STATUS_COLUMN not in effect.key:
                raise ValidationError(
                    f"update of {STATUS_SCHEMA}:{STATUS_TABLE}: a plain update of Status (to {row[STATUS_COLUMN]!r} "
                    f"for {row.get('RID')!r}) is refused; status changes go through transition() and are applied "
                    f"as a compare-and-set (SetStatus)"
                )


def _effects(value: Iterable[Effect]) -> tuple[Effect, ...]:
    return tuple(value)


@attrs.frozen(hash=False)
class Batch:
    """Effects applied in order, as one unit where the backend allows."""

    effects: tuple[Effect, ...] = attrs.field(converter=_effects)

    def __attrs_post_init__(self) -> None:
        seen: set[str] = set()
        for effect in self.effects:
            for ref in _refs_in(effect):
                if ref.label not in seen:
                    raise ValidationError(
                        f"Ref({ref.label!r}) in {type(effect).__name__} of {effect.schema}:{effect.table} "
                        f"names no row inserted earlier in the batch"
                    )
            if isinstance(effect, Insert):
                for label in effect.labels:
                    if label is not None:
                        if label in seen:
                            raise ValidationError(f"label {label!r} is used twice in one batch")
                        seen.add(label)

    def __bool__(self) -> bool:
        return bool(self.effects)


def _refs_in(effect: Effect) -> Iterable[Ref]:
    if isinstance(effect, SetStatus):
        return
    if isinstance(effect, Insert | Update):
        for row in effect.rows:
            for v in row.values():
                if isinstance(v, Ref):
                    yield v
    else:
        for v in (*effect.values, *effect.where.values()):
            if isinstance(v, Ref):
                yield v


@attrs.frozen(hash=False)
class BatchResult:
    """What applying a batch produced: the RID of each label, and the rows each Insert wrote.

    ``inserted[i]`` holds, for the i-th effect of the batch, the rows as stored (with system columns) when
    that effect is an Insert, else an empty tuple. Rows skipped by ``on_conflict_skip`` are absent.
    """

    rids: Mapping[str, RID] = attrs.field(factory=dict, converter=_rid_map)
    inserted: tuple[tuple[Row, ...], ...] = attrs.field(factory=tuple, converter=_inserted)


def resolve_refs(row: Row, rids: Mapping[str, RID]) -> dict[str, Any]:
    """Replace every ``Ref`` in ``row`` with its RID from ``rids`` (pure; used by every adapter)."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, Ref):
            if v.label not in rids:
                raise ValidationError(f"Ref({v.label!r}) was not produced by an earlier effect")
            out[k] = rids[v.label]
        else:
            out[k] = v
    return out
