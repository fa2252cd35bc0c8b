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
from deriva_ml.core.rid import RID


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


Effect: TypeAlias = Insert | Update | Delete


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
