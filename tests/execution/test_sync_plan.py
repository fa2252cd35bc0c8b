"""The sync planner (``deriva_ml.sync._plan``) on its own: journal entries -> target groups, no catalog, no I/O.

Table-driven: where groups are cut (row and entry limits, a status change, DDL), how RIDs are rewritten (a
row produced in the same group -> ``Ref`` to its label; one produced by an earlier group -> the target's RID)
and how consecutive writes to one table merge into one effect.
"""

from __future__ import annotations

import pytest

from deriva_ml.catalog.journal import JournalEntry
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.effects import Batch, BatchResult, Insert, Ref, Update
from deriva_ml.core.schema_defs import TableDef
from deriva_ml.sync._plan import _Builder, _Group

SCHEMA = "d"


def insert(seq: int, n: int = 1) -> JournalEntry:
    """Entry ``seq``: ``n`` rows inserted into d:T (source RIDs ``<seq>-<j>``)."""
    labels = [f"l{j}" for j in range(n)]
    rows = [{"Name": f"r{seq}.{j}"} for j in range(n)]
    stored = tuple({"RID": f"{seq}-{j}", **r} for j, r in enumerate(rows))
    result = BatchResult(rids={lab: f"{seq}-{j}" for j, lab in enumerate(labels)}, inserted=(stored,))
    return JournalEntry(seq, Batch((Insert(SCHEMA, "T", rows, labels=labels),)), result)


def update(seq: int, rid: str, *, table: str = "T", schema: str = SCHEMA, **values: object) -> JournalEntry:
    return JournalEntry(seq, Batch((Update(schema, table, [{"RID": rid, **values}]),)), BatchResult())


def plan(entries: list[JournalEntry], *, rid_map: dict | None = None, rows: int = 5000, n: int = 2000) -> list[_Group]:
    """What ``sync`` does with the builder: cut before an entry when told, then add it (a DDL entry is
    applied on its own, outside any group)."""
    builder = _Builder(rid_map or {}, max_rows=rows, max_entries=n)
    groups: list[_Group] = []
    for entry in entries:
        if builder.must_flush_before(entry):
            groups.append(builder.take())
        if not entry.tables:
            builder.add(entry, "snap")
    if builder:
        groups.append(builder.take())
    return groups


@pytest.mark.parametrize(
    ("entries", "rows_each", "max_rows", "max_entries", "expected"),
    [
        (5, 1, 5000, 2000, [(1, 5)]),  # everything in one group
        (5, 1, 5000, 2, [(1, 2), (3, 4), (5, 5)]),  # the entry limit
        (5, 3, 6, 2000, [(1, 2), (3, 4), (5, 5)]),  # the row limit (checked before adding)
        (3, 10, 5, 2000, [(1, 1), (2, 2), (3, 3)]),  # an entry larger than the limit is never split
        (1, 1, 1, 1, [(1, 1)]),
    ],
)
def test_groups_are_cut_at_the_row_and_entry_limits(
    entries: int, rows_each: int, max_rows: int, max_entries: int, expected: list[tuple[int, int]]
) -> None:
    groups = plan([insert(i, rows_each) for i in range(1, entries + 1)], rows=max_rows, n=max_entries)
    assert [(g.first, g.last) for g in groups] == expected
    assert [g.rows for g in groups] == [(last - first + 1) * rows_each for first, last in expected]
    # consecutive inserts into one table are one effect: one request on ERMrest
    assert all(len(g.batch.effects) == 1 for g in groups)


def test_rids_become_refs_inside_a_group_and_target_rids_across_groups() -> None:
    entries = [insert(1), update(2, "1-0", Name="x"), insert(3), update(4, "1-0", Name="y")]
    first, second = plan(entries, rid_map={"1-0": "T-1"}, n=2)
    ins, upd = first.batch.effects
    assert isinstance(upd, Update) and upd.rows[0]["RID"] == Ref(ins.labels[0])  # produced in this group
    assert first.produced == {ins.labels[0]: "1-0"}
    upd2 = second.batch.effects[1]
    assert isinstance(upd2, Update) and upd2.rows[0]["RID"] == "T-1"  # produced earlier: the target's RID


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        # a DDL entry ends the group before it
        (
            [insert(1), JournalEntry(2, Batch(()), BatchResult(), (TableDef(SCHEMA, "U", ()),)), insert(3)],
            [(1, 1), (3, 3)],
        ),
        # a plain Execution.Status update is a group of its own
        (
            [insert(1), update(2, "1-0", table="Execution", schema=ML_SCHEMA, Status="Running"), insert(3)],
            [(1, 1), (2, 2), (3, 3)],
        ),
        # updates of one table with distinct keys merge; inserts after them join the same group
        ([update(1, "A", Name="a"), update(2, "B", Name="b"), insert(3)], [(1, 3)]),
    ],
)
def test_where_groups_are_cut(entries: list[JournalEntry], expected: list[tuple[int, int]]) -> None:
    assert [(g.first, g.last) for g in plan(entries)] == expected
