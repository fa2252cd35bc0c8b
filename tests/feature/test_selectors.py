"""The selectors as pure functions, table-driven (core/selectors.py): same names and meanings as the reference."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import pytest

from deriva_ml.core.errors import ValidationError
from deriva_ml.core.selectors import (
    apply_selector,
    select_by_execution,
    select_first,
    select_latest,
    select_majority_vote,
    select_newest,
)


@attrs.frozen
class V:
    Image: str
    Diagnosis: str | None
    Execution: str
    RCT: str | None
    RID: str
    Grade: str | None = None


class _Feature:
    term_columns: ClassVar[tuple[str, ...]] = ("Diagnosis",)


class OneTerm(V):
    feature = _Feature


def v(rid: str, diag: str | None, rct: str | None, exe: str = "E-1", image: str = "I-1", grade: str | None = None) -> V:
    return V(Image=image, Diagnosis=diag, Execution=exe, RCT=rct, RID=rid, Grade=grade)


A = v("1-A", "Normal", "2026-01-01T00:00:00+00:00", "E-1")
B = v("1-B", "Glaucoma", "2026-01-02T00:00:00+00:00", "E-2")
C = v("1-C", "Glaucoma", "2026-01-03T00:00:00+00:00", "E-3")
D = v("1-D", "Normal", "2026-01-04T00:00:00+00:00", "E-2")
SAME_TIME_1 = v("1-E", "Normal", "2026-01-05T00:00:00+00:00")
SAME_TIME_2 = v("1-F", "Normal", "2026-01-05T00:00:00+00:00")
NO_TIME = v("1-0", "Normal", None)


@pytest.mark.parametrize(
    ("selector", "records", "expected"),
    [
        (select_newest, [A, B, C], C),
        (select_newest, [C, A, B], C),
        (select_latest, [A, B], B),
        (select_first, [B, C, A], A),
        (select_newest, [NO_TIME, A], A),  # a record without RCT is older than any timestamped one
        (select_first, [A, NO_TIME], NO_TIME),
        (select_newest, [SAME_TIME_2, SAME_TIME_1], SAME_TIME_2),  # ties on RCT: the larger RID
        (select_first, [SAME_TIME_2, SAME_TIME_1], SAME_TIME_1),
        (select_by_execution("E-2"), [A, B, C, D], D),  # the newest of that execution
        (select_by_execution("E-9"), [A, B], None),  # none from it: the target is dropped
        (select_majority_vote("Diagnosis"), [A, B, C], C),  # Glaucoma x2 wins; the newest Glaucoma
        (select_majority_vote("Diagnosis"), [A, B, D], D),  # Normal x2
        (select_majority_vote("Diagnosis"), [A, B], B),  # a tie: the newest record among the tied values
        (select_majority_vote("Diagnosis"), [A], A),
    ],
)
def test_selectors(selector: Any, records: list[V], expected: V | None) -> None:
    assert selector(records) == expected


def test_majority_vote_detects_the_only_term_column() -> None:
    recs = [OneTerm(**attrs.asdict(r)) for r in (A, B, C)]
    assert select_majority_vote()(recs).RID == "1-C"


def test_majority_vote_without_a_column_on_records_without_one_term_column_names_the_columns() -> None:
    with pytest.raises(ValidationError, match=r"column=.*term columns are \[\]"):
        select_majority_vote()([A, B])


def test_majority_vote_on_another_column() -> None:
    g = [
        v("1-A", "Normal", "1", grade="high"),
        v("1-B", "Glaucoma", "2", grade="low"),
        v("1-C", "Normal", "3", grade="low"),
    ]
    assert select_majority_vote("Grade")(g).RID == "1-C"


def test_an_empty_group_is_an_error() -> None:
    for sel in (select_newest, select_first, select_majority_vote("Diagnosis")):
        with pytest.raises(ValidationError, match="no records"):
            sel([])


def test_apply_selector_groups_by_target_in_first_seen_order() -> None:
    i2 = v("1-X", "Normal", "2026-01-09T00:00:00+00:00", "E-5", image="I-2")
    records = [A, i2, B, C]
    assert apply_selector(records, lambda r: r.Image, None) == records
    assert apply_selector(records, lambda r: r.Image, select_newest) == [C, i2]
    assert apply_selector(records, lambda r: r.Image, select_by_execution("E-1")) == [A]
    assert apply_selector([], lambda r: r.Image, select_newest) == []
