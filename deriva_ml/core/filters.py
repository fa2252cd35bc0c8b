"""A tiny filter algebra and path query, as frozen records (pure: no I/O).

Users build filters with :func:`col`::

    col("Age") > 30                      Cmp("Age", "gt", 30)
    col("Name") == "s1"                  Cmp("Name", "eq", "s1")
    col("Notes") == None                 Cmp("Notes", "null", None)
    col("Site").in_(["A", "B"])          In("Site", ("A", "B"))
    (col("Age") >= 3) & ~(col("Name") == "x") | col("Age").is_null()

Each catalog adapter translates these records itself: SQLite into ``WHERE`` clauses with parameters
(``catalog/sqlite/_select.py``), ERMrest into its filter language (``col=v``, ``col::gt::v``, ``&``, ``;``, ``!``,
parentheses: ``catalog/ermrest/_urls.py``). :func:`matches` evaluates a filter on a row dict (SQL semantics: a
comparison with NULL is false, and so is its negation), so the meaning is written once and tested.

A :class:`PathQuery` is a chain of :class:`Step`: the rows of the last table reached from the filtered
rows of the first by following columns (``via`` of the previous table equals ``target_column`` of this
one), each row once, in RID order, optionally after a RID (paging) and limited.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

from deriva_ml.core.errors import ValidationError

Op = Literal["eq", "lt", "leq", "gt", "geq", "null"]
OPS: tuple[str, ...] = ("eq", "lt", "leq", "gt", "geq", "null")


def _tuple(values: Iterable[Any]) -> tuple[Any, ...]:
    if isinstance(values, str | bytes):
        raise ValidationError(f"in_() takes a list of values, not the string {values!r}")
    return tuple(values)


def _parts(values: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(values)


def _steps(values: Iterable[Step]) -> tuple[Step, ...]:
    return tuple(values)


class _Combine:
    """``&``, ``|`` and ``~`` on every filter record."""

    def __and__(self, other: Filter) -> And:
        return And((self, other))

    def __or__(self, other: Filter) -> Or:
        return Or((self, other))

    def __invert__(self) -> Not:
        return Not(self)


@attrs.frozen
class Cmp(_Combine):
    """``column <op> value``; ``op="null"`` tests for NULL (``value`` ignored)."""

    column: str
    op: str
    value: Any = None

    def __attrs_post_init__(self) -> None:
        if self.op not in OPS:
            raise ValidationError(f"filter operator {self.op!r} is not known; valid: {', '.join(OPS)}")
        if self.op not in ("eq", "null") and self.value is None:
            raise ValidationError(f"filter {self.column} {self.op} None: only == and != compare with None")


@attrs.frozen
class In(_Combine):
    """``column`` equals any of ``values`` (an empty tuple matches nothing)."""

    column: str
    values: tuple[Any, ...] = attrs.field(converter=_tuple)


@attrs.frozen
class And(_Combine):
    parts: tuple[Any, ...] = attrs.field(converter=_parts)


@attrs.frozen
class Or(_Combine):
    parts: tuple[Any, ...] = attrs.field(converter=_parts)


@attrs.frozen
class Not(_Combine):
    part: Any


Filter = Cmp | In | And | Or | Not


class Column:
    """A column reference that builds filters with Python operators (``col("Age") > 3``)."""

    __slots__ = ("name",)
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValidationError(f"column name {name!r} must be a non-empty string")
        self.name = name

    def __eq__(self, value: object) -> Cmp:  # type: ignore[override]
        return Cmp(self.name, "null") if value is None else Cmp(self.name, "eq", value)

    def __ne__(self, value: object) -> Not:  # type: ignore[override]
        return Not(self == value)

    def __lt__(self, value: Any) -> Cmp:
        return Cmp(self.name, "lt", value)

    def __le__(self, value: Any) -> Cmp:
        return Cmp(self.name, "leq", value)

    def __gt__(self, value: Any) -> Cmp:
        return Cmp(self.name, "gt", value)

    def __ge__(self, value: Any) -> Cmp:
        return Cmp(self.name, "geq", value)

    def in_(self, values: Iterable[Any]) -> In:
        return In(self.name, values)

    def is_null(self) -> Cmp:
        return Cmp(self.name, "null")

    def __repr__(self) -> str:
        return f"col({self.name!r})"


def col(name: str) -> Column:
    """A column of the table being queried, for building filters."""
    return Column(name)


def as_filter(value: Any) -> Filter | None:
    """A filter from a filter record, a ``{column: value-or-list}`` mapping (equality / any-of), or None."""
    if value is None:
        return None
    if isinstance(value, Cmp | In | And | Or | Not):
        return value
    if isinstance(value, Mapping):
        parts: list[Filter] = []
        for c, v in value.items():
            if isinstance(v, list | tuple | set | frozenset):
                parts.append(In(str(c), tuple(v)))
            else:
                parts.append(Cmp(str(c), "null") if v is None else Cmp(str(c), "eq", v))
        return parts[0] if len(parts) == 1 else And(tuple(parts))
    if isinstance(value, Column):
        raise ValidationError(f"{value!r} is a column, not a filter: compare it (col('X') == 1)")
    raise ValidationError(f"not a filter: {value!r} (build one with col('Name') == value, or pass a dict)")


def columns_of(f: Filter | None) -> list[str]:
    """Every column a filter names, in first-seen order."""
    out: dict[str, None] = {}

    def walk(x: Any) -> None:
        if isinstance(x, Cmp | In):
            out.setdefault(x.column)
        elif isinstance(x, And | Or):
            for p in x.parts:
                walk(p)
        elif isinstance(x, Not):
            walk(x.part)

    walk(f)
    return list(out)


def _cmp(a: Any, op: str, b: Any) -> bool:
    try:
        if op == "eq":
            return bool(a == b)
        if op == "lt":
            return bool(a < b)
        if op == "leq":
            return bool(a <= b)
        if op == "gt":
            return bool(a > b)
        return bool(a >= b)
    except TypeError:
        return False


def _eval(f: Any, row: Mapping[str, Any]) -> bool | None:
    """Three-valued (SQL) truth: None is 'unknown' (a comparison with NULL)."""
    if isinstance(f, Cmp):
        v = row.get(f.column)
        if f.op == "null":
            return v is None
        if v is None:
            return None
        return _cmp(v, f.op, f.value)
    if isinstance(f, In):
        v = row.get(f.column)
        if v is None:  # like the adapters: a None among the values matches NULL
            return True if None in f.values else None
        return v in f.values
    if isinstance(f, And):
        vals = [_eval(p, row) for p in f.parts]
        if any(v is False for v in vals):
            return False
        return None if any(v is None for v in vals) else True
    if isinstance(f, Or):
        vals = [_eval(p, row) for p in f.parts]
        if any(v is True for v in vals):
            return True
        return None if any(v is None for v in vals) else False
    if isinstance(f, Not):
        v = _eval(f.part, row)
        return None if v is None else not v
    raise ValidationError(f"not a filter: {f!r}")


def matches(f: Filter | None, row: Mapping[str, Any]) -> bool:
    """Whether ``row`` satisfies ``f`` with SQL's NULL semantics (no filter: every row)."""
    return True if f is None else _eval(f, row) is True


def split_largest_in(f: Filter | None, parts: int) -> list[Filter] | None:
    """``f`` as ``parts`` filters that together select what ``f`` selects: the longest :class:`In` of the
    top-level conjunction split into pieces (for adapters whose requests have a size budget); None when
    there is no such list of more than one value."""
    conj: list[Any] = list(f.parts) if isinstance(f, And) else ([f] if f is not None else [])
    ins = [i for i, p in enumerate(conj) if isinstance(p, In) and len(p.values) > 1]
    if not ins:
        return None
    k = max(ins, key=lambda i: len(conj[i].values))
    vals = conj[k].values
    n = max(1, min(parts, len(vals)))
    size = -(-len(vals) // n)
    out: list[Filter] = []
    for i in range(0, len(vals), size):
        piece = In(conj[k].column, vals[i : i + size])
        rest = [*conj[:k], piece, *conj[k + 1 :]]
        out.append(rest[0] if len(rest) == 1 else And(tuple(rest)))
    return out


@attrs.frozen
class Step:
    """One table of a path: ``schema:table`` filtered by ``filter``; reached from the previous step's rows
    whose ``via`` column equals this table's ``target_column`` (both None on the first step)."""

    schema: str
    table: str
    filter: Any = None
    via: str | None = None
    target_column: str | None = None


_RID_PAGE = re.compile(r"^[0-9A-Z-]{1,40}$")


@attrs.frozen
class PathQuery:
    """The distinct rows of the last step's table (``columns`` of them, all when None), in RID order,
    those with RID after ``after`` only, at most ``limit`` of them."""

    steps: tuple[Step, ...] = attrs.field(converter=_steps)
    columns: tuple[str, ...] | None = None
    after: str | None = None
    limit: int | None = None

    def __attrs_post_init__(self) -> None:
        if not self.steps:
            raise ValidationError("a path query needs at least one table")
        for s in self.steps[1:]:
            if not s.via or not s.target_column:
                raise ValidationError(f"step {s.schema}:{s.table}: a linked table needs via and target_column")
        if self.after is not None and not _RID_PAGE.match(str(self.after)):
            raise ValidationError(f"page key {self.after!r} is not a RID")
        if self.limit is not None and (not isinstance(self.limit, int) or isinstance(self.limit, bool)):
            raise ValidationError(f"limit={self.limit!r} must be an integer")

    @property
    def last(self) -> Step:
        return self.steps[-1]
