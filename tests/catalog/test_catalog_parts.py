"""The parts the two catalog adapters were split into, tested directly, and the behaviour they carry on
every backend (embedded SQLite, the ERMrest fake on 127.0.0.1, a live ERMrest when configured)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from catalog_support import DOMAIN

from deriva_ml.catalog._common import check_path_columns
from deriva_ml.catalog.port import Catalog
from deriva_ml.core.effects import Batch, Insert
from deriva_ml.core.errors import UnknownColumn
from deriva_ml.core.filters import In, PathQuery, Step
from deriva_ml.core.schema_defs import ColumnDef, KeyDef, TableDef

N = 3000


def _table(*keys: tuple[str, ...]) -> TableDef:
    cols = (ColumnDef("Name", "text"), ColumnDef("Code", "int4"), ColumnDef("Note", "text"))
    return TableDef(DOMAIN, "T", cols, tuple(KeyDef(k) for k in keys))


def _match(t: TableDef, sent: list[dict[str, Any]], got: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
    from deriva_ml.catalog.ermrest._writer import match_skipped

    idxs = list(range(len(sent)))
    out: list[dict[str, Any] | None] = [None] * len(sent)
    match_skipped(t, sent, idxs, got, out)
    return out


def test_match_skipped_pairs_thousands_of_returned_rows_by_key() -> None:
    """A returned row is the sent row with its key; a skipped row (every third) gets none, whatever order
    the server returns the inserted rows in."""
    sent = [{"Name": f"n{i}", "Code": i, "Note": "x"} for i in range(N)]
    got = [{"RID": f"R{i}", **row} for i, row in enumerate(sent) if i % 3]
    random.Random(7).shuffle(got)
    out = _match(_table(("Name",)), sent, got)
    for i, row in enumerate(out):
        if i % 3 == 0:
            assert row is None
        else:
            assert row is not None and row["RID"] == f"R{i}"


def test_match_skipped_uses_any_key_the_sent_row_has_and_each_returned_row_once() -> None:
    t = _table(("Name",), ("Code",))
    sent = [{"Code": 1}, {"Name": "b", "Code": 2}, {"Name": "c"}, {"Name": "d"}]
    got = [{"RID": "R2", "Name": "b", "Code": 2}, {"RID": "R1", "Name": None, "Code": 1}, {"RID": "R3", "Name": "c"}]
    assert [r and r["RID"] for r in _match(t, sent, got)] == ["R1", "R2", "R3", None]


def test_match_skipped_without_keys_matches_all_sent_columns_in_order() -> None:
    """Identical rows of a keyless table take the returned copies in order, one each."""
    sent = [{"Note": "same"}] * 4 + [{"Note": "other"}] * N
    got = [{"RID": f"S{i}", "Note": "same"} for i in range(3)] + [{"RID": f"O{i}", "Note": "other"} for i in range(N)]
    out = _match(_table(), sent, got)
    assert [r and r["RID"] for r in out[:4]] == ["S0", "S1", "S2", None]
    assert [r and r["RID"] for r in out[4:]] == [f"O{i}" for i in range(N)]


def test_match_skipped_compares_json_values_by_content() -> None:
    t = _table(("Name",))
    sent = [{"Name": ["a", 1]}, {"Name": {"k": [1, 2]}}]
    got = [{"RID": "B", "Name": {"k": [1, 2]}}, {"RID": "A", "Name": ["a", 1]}]
    assert [r and r["RID"] for r in _match(t, sent, got)] == ["A", "B"]


def test_path_columns_are_checked_for_filters_and_links() -> None:
    a, b = _table(("Name",)), TableDef(DOMAIN, "U", (ColumnDef("T", "text"),))
    ok = PathQuery([Step(DOMAIN, "T", In("Name", ["x"])), Step(DOMAIN, "U", via="RID", target_column="T")])
    check_path_columns(ok, [a, b])
    for bad, name in [
        (PathQuery([Step(DOMAIN, "T", In("Nope", ["x"]))]), "Nope"),
        (PathQuery([Step(DOMAIN, "T"), Step(DOMAIN, "U", via="Gone", target_column="T")]), "Gone"),
        (PathQuery([Step(DOMAIN, "T"), Step(DOMAIN, "U", via="RID", target_column="Lost")]), "Lost"),
    ]:
        with pytest.raises(UnknownColumn, match=name):
            check_path_columns(bad, [a, b][: len(bad.steps)])


def test_on_conflict_skip_of_thousands_of_rows(catalog: Catalog) -> None:
    """3,000 rows, every third already stored: the new ones are returned (in the order sent), the labels
    of new and skipped rows name the stored rows; through ERMrest in a constant number of requests."""
    names = [f"s{i:05d}" for i in range(N)]
    catalog.apply(Batch([Insert(DOMAIN, "Subject", [{"Name": n} for n in names[::3]])]))
    labelled = {i for i in range(N) if i % 500 == 0 or i % 500 == 1}  # skipped (i % 3 == 0) and new ones
    labels = [f"L{i}" if i in labelled else None for i in range(N)]
    before = getattr(catalog, "request_count", None)
    rows = [{"Name": n, "Age": i} for i, n in enumerate(names)]
    result = catalog.apply(Batch([Insert(DOMAIN, "Subject", rows, labels, on_conflict_skip=True)]))
    if before is not None:
        skipped_labelled = sum(1 for i in labelled if i % 3 == 0)
        assert skipped_labelled == 4
        # 3 POSTs of batch_size 1000 (model cached), one GET for all labelled rows the server skipped
        assert catalog.request_count - before == 3 + 1  # type: ignore[attr-defined]
    stored = {r["Name"]: r for r in catalog.query(DOMAIN, "Subject", columns=["RID", "Name", "Age"])}
    new = [n for i, n in enumerate(names) if i % 3]
    assert [r["Name"] for r in result.inserted[0]] == new
    assert [r["RID"] for r in result.inserted[0]] == [stored[n]["RID"] for n in new]
    assert result.rids == {f"L{i}": stored[names[i]]["RID"] for i in labelled}
    assert [stored[n]["Age"] for n in names[::3]] == [None] * len(names[::3])  # skipped: not overwritten


def test_long_value_lists_with_null(catalog: Catalog) -> None:
    """A where-list and an ``In`` filter longer than one statement's parameters, with None among them."""
    rows = [{"Name": f"v{i}", "Age": i if i % 10 else None} for i in range(700)]
    catalog.apply(Batch([Insert(DOMAIN, "Subject", rows)]))
    ages = [*range(0, 1400, 2), None]
    want = sorted(r["Name"] for r in rows if r["Age"] is None or r["Age"] % 2 == 0)
    got = catalog.query(DOMAIN, "Subject", {"Age": ages}, columns=["Name"])
    assert sorted(r["Name"] for r in got) == want
    path = PathQuery([Step(DOMAIN, "Subject", In("Age", ages))], columns=("Name",))
    assert sorted(r["Name"] for r in catalog.select_path(path)) == want  # type: ignore[attr-defined]
    assert catalog.count_path(path) == len(want)  # type: ignore[attr-defined]
