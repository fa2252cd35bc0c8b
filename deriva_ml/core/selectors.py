"""Feature-value selectors: pure functions that pick one value out of several for the same target row.

A feature may hold several values for one row (labels from several annotators, predictions from several
runs). ``list_feature_values(table, name, selector=...)`` groups the values by target row and calls the
selector on each group; the selector returns the value to keep, or ``None`` to drop the row.

The names and meanings are the reference package's (``FeatureRecord.select_newest`` and friends):

- :func:`select_newest` / :func:`select_latest`: the value with the latest RCT (row creation time);
- :func:`select_first`: the value with the earliest RCT;
- :func:`select_by_execution` ``(rid)``: the newest value written by that execution;
- :func:`select_majority_vote` ``(column=None)``: the most frequent value of a term column, ties broken by
  the latest RCT. Without ``column`` the feature's only term column is used.

Records are any objects with the attributes used (``RCT``, ``RID``, ``Execution``, the voted column);
ties on RCT are broken by RID so every selector is deterministic. No I/O, no clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar

from deriva_ml.core.errors import ValidationError

R = TypeVar("R")
Selector = Callable[[Sequence[Any]], Any]

__all__ = [
    "Selector",
    "apply_selector",
    "select_by_execution",
    "select_first",
    "select_latest",
    "select_majority_vote",
    "select_newest",
]


def _age(record: Any) -> tuple[str, str]:
    return (str(getattr(record, "RCT", None) or ""), str(getattr(record, "RID", None) or ""))


def _nonempty(records: Sequence[R], who: str) -> None:
    if not records:
        raise ValidationError(f"{who}: called with no records (a group always holds at least one)")


def select_newest(records: Sequence[R]) -> R:
    """The record created last (largest RCT; RID breaks ties)."""
    _nonempty(records, "select_newest")
    return max(records, key=_age)


#: The reference's alias of :func:`select_newest`.
select_latest = select_newest


def select_first(records: Sequence[R]) -> R:
    """The record created first (smallest RCT; RID breaks ties)."""
    _nonempty(records, "select_first")
    return min(records, key=_age)


def select_by_execution(execution_rid: str) -> Callable[[Sequence[R]], R | None]:
    """A selector keeping the newest record written by ``execution_rid``; a group without one is dropped."""

    def selector(records: Sequence[R]) -> R | None:
        mine = [r for r in records if getattr(r, "Execution", None) == execution_rid]
        return select_newest(mine) if mine else None

    selector.__name__ = f"select_by_execution({execution_rid!r})"
    return selector


def _term_column(records: Sequence[Any]) -> str:
    feature = getattr(type(records[0]), "feature", None)
    columns = tuple(getattr(feature, "term_columns", ()) or ())
    if len(columns) == 1:
        return str(columns[0])
    raise ValidationError(
        "select_majority_vote: name the column to vote on with select_majority_vote(column=...); "
        f"the feature's term columns are {list(columns)}"
    )


def select_majority_vote(column: str | None = None) -> Callable[[Sequence[R]], R]:
    """A selector keeping a record whose ``column`` holds the most frequent value of the group.

    Ties between equally frequent values go to the newest record among them. ``column=None`` votes on
    the feature's only term column (an error names the term columns when there are several or none).
    """

    def selector(records: Sequence[R]) -> R:
        _nonempty(records, "select_majority_vote")
        col = column or _term_column(records)
        counts = Counter(_hashable(getattr(r, col, None)) for r in records)
        top = max(counts.values())
        winners = {v for v, n in counts.items() if n == top}
        return select_newest([r for r in records if _hashable(getattr(r, col, None)) in winners])

    selector.__name__ = f"select_majority_vote({column!r})"
    return selector


def _hashable(value: Any) -> Hashable:
    return value if isinstance(value, Hashable) else repr(value)


def apply_selector(
    records: Iterable[R], key: Callable[[R], Any], selector: Callable[[Sequence[R]], R | None] | None
) -> list[R]:
    """Group ``records`` by ``key`` (first-seen order) and keep what ``selector`` picks from each group.

    Without a selector every record is returned as given. Groups whose selector returns ``None`` are dropped.
    """
    if selector is None:
        return list(records)
    groups: dict[Any, list[R]] = {}
    for r in records:
        groups.setdefault(key(r), []).append(r)
    out: list[R] = []
    for group in groups.values():
        chosen = selector(group)
        if chosen is not None:
            out.append(chosen)
    return out
