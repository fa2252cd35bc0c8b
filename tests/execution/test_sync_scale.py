"""Sync scales: entries merged into few target requests, a re-sync reads only new entries, a frozen report."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import attrs
import pytest

from deriva_ml import DerivaML
from deriva_ml.catalog.journal import read_journal
from deriva_ml.core import effects as effects_module
from deriva_ml.core.effects import Batch, Insert, Update
from deriva_ml.core.errors import ConfigurationError
from deriva_ml.sync import sync
from deriva_ml.testing import add_domain_schema, add_subjects


@pytest.fixture
def live(tmp_path: Path) -> Any:
    from ermrest_fake import FakeErmrest
    from hatrac_server import HatracTestServer, make_store

    from deriva_ml.catalog.ermrest import create_ml_catalog

    with FakeErmrest() as er, HatracTestServer() as hs:
        cat = create_ml_catalog(er.host, "target", scheme="http", credential={})
        ml = DerivaML(er.host, cat.catalog_id, catalog=cat, store=make_store(hs), home=tmp_path / "live-home")
        yield ml, er
        ml.close()


def offline(tmp_path: Path) -> DerivaML:
    ml = DerivaML("local", "offline", home=tmp_path / "home")
    add_domain_schema(ml)
    return ml


def subject_rows(ml: DerivaML, schema: str = "offline") -> list[str]:
    return sorted(r["Name"] for r in ml.catalog.query(schema, "Subject"))


def test_consecutive_entries_become_few_requests_on_ermrest(tmp_path: Path, live: Any) -> None:
    target, er = live
    src = offline(tmp_path)
    sync(src, target)  # the schema and terms
    dom = src.domain_schema or ""
    rids = [add_subjects(src, [f"subject {i}"])[0] for i in range(60)]  # 60 entries, one row each
    for i, rid in enumerate(rids[:20]):  # 20 entries, each renaming a row inserted by an earlier entry
        src.catalog.apply(Batch([Update(dom, "Subject", [{"RID": rid, "Name": f"renamed {i}"}])]))
    before = len(er.log)
    report = sync(src, target)
    writes = [(m, p) for m, p, _ in er.log[before:] if m in ("POST", "PUT", "DELETE")]
    assert report.entries_applied == 80
    # one POST for the 60 inserts and one PUT for the 20 updates (main sent 80 requests: one per entry)
    assert sorted(m for m, _ in writes) == ["POST", "PUT"], writes
    assert subject_rows(target) == subject_rows(src)
    assert report.target_rid(rids[0]) in {r["RID"] for r in target.catalog.query(dom, "Subject", {"Name": "renamed 0"})}


def test_group_boundaries_keep_cross_entry_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import deriva_ml.sync as sync_module

    monkeypatch.setattr(sync_module, "GROUP_ENTRIES", 7)  # many small groups: references cross groups
    src = offline(tmp_path)
    target = DerivaML("local", "target", home=tmp_path / "target")
    dom = src.domain_schema or ""
    rids = [add_subjects(src, [f"s{i}"])[0] for i in range(30)]
    for i, rid in enumerate(rids):
        src.catalog.apply(Batch([Update(dom, "Subject", [{"RID": rid, "Name": f"r{i}"}])]))
    report = sync(src, target)
    assert report.batches_applied >= 60 // 7
    for i, rid in enumerate(rids):
        (row,) = target.catalog.query(dom, "Subject", {"RID": report.target_rid(rid)})
        assert row["Name"] == f"r{i}"
    assert len(target.catalog.query(dom, "Subject")) == 30


def test_embedded_sync_merges_entries_into_few_batches(tmp_path: Path) -> None:
    src = offline(tmp_path)
    target = DerivaML("local", "target", home=tmp_path / "target")
    for i in range(300):
        add_subjects(src, [f"s{i}"])
    before = int(target.catalog.snapshot())
    report = sync(src, target)
    entries = sum(1 for _ in read_journal(src.catalog))
    ddl = sum(1 for e in read_journal(src.catalog) if e.tables)  # each a snapshot of its own too
    assert report.entries_applied == entries > 300
    # the snapshot id counts committed batches and DDL changes: far fewer than one per entry
    assert report.batches_applied <= 10 and ddl <= 5
    assert int(target.catalog.snapshot()) - before == report.batches_applied + ddl
    assert subject_rows(target) == subject_rows(src)


def test_resync_reads_only_new_entries(tmp_path: Path) -> None:
    src = offline(tmp_path)
    target = DerivaML("local", "target", home=tmp_path / "target")
    add_subjects(src, ["a", "b"])
    first = sync(src, target)
    assert first.entries_read == first.entries_applied == first.last_seq
    # damage every entry already synced: a reader that decodes them fails
    conn = sqlite3.connect(src.catalog.path)  # type: ignore[attr-defined]
    conn.execute("UPDATE _dml_journal SET entry = 'not json' WHERE seq <= ?", (first.last_seq,))
    conn.commit()
    conn.close()
    with pytest.raises(ConfigurationError):
        list(read_journal(src.catalog))
    again = sync(src, target)
    assert (again.entries_read, again.entries_applied, again.batches_applied) == (0, 0, 0)
    add_subjects(src, ["c"])
    add_subjects(src, ["d"])
    third = sync(src, target)
    assert third.entries_read == third.entries_applied == 2
    assert subject_rows(target) == ["a", "b", "c", "d"]


def test_read_journal_after_skips_earlier_lines_of_a_file(tmp_path: Path) -> None:
    from deriva_ml.catalog.journal import JournalEntry, encode_entry
    from deriva_ml.core.effects import BatchResult

    path = tmp_path / "journal.jsonl"
    batch = Batch([Insert("s", "t", [{"Name": "x"}])])
    lines = [encode_entry(JournalEntry(i, batch, BatchResult(inserted=[[{"RID": f"1-000{i}"}]]))) for i in (1, 2, 3)]
    damaged = lines[0][: lines[0].index('"batch"')] + '"batch":garbage}'
    path.write_text("\n".join([damaged, *lines[1:]]) + "\n")  # the first line is damaged, its seq readable
    assert [e.seq for e in read_journal(path, after=1)] == [2, 3]


def test_report_is_frozen_all_the_way_down(tmp_path: Path) -> None:
    src = offline(tmp_path)
    target = DerivaML("local", "target", home=tmp_path / "target")
    target.add_term("Dataset_Type", "Target only", "shifts the target's RIDs")
    (rid,) = add_subjects(src, ["a"])
    report = sync(src, target)
    assert report.target_rid(rid) != rid
    with pytest.raises(TypeError):
        report.rid_map[rid] = "1-XXXX"  # type: ignore[index]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        report.last_seq = 0  # type: ignore[misc]
    assert report.target_rid(rid) != "1-XXXX"


def test_status_changes_replay_as_compare_and_set(tmp_path: Path, live: Any) -> None:
    """Expectation for the SetStatus effect (helper "status"): an offline execution's status changes are
    journalled as compare-and-set effects and sync replays them as such (generic codec path, no code in
    sync for the kind); a plain Update of Execution.Status never reaches the target."""
    if not hasattr(effects_module, "SetStatus"):
        pytest.skip("SetStatus (compare-and-set of Execution.Status) is not on this branch yet")
    from deriva_ml.core.definitions import ML_SCHEMA

    from .test_sync import record_offline

    target, _er = live
    src = offline(tmp_path)
    rid = record_offline(src, "cas")
    kinds = {
        type(e).__name__
        for entry in read_journal(src.catalog)
        for e in entry.batch.effects
        if (e.schema, e.table) == (ML_SCHEMA, "Execution")
    }
    assert "SetStatus" in kinds
    assert not any(
        isinstance(e, Update) and any("Status" in r for r in e.rows)
        for entry in read_journal(src.catalog)
        for e in entry.batch.effects
        if (e.schema, e.table) == (ML_SCHEMA, "Execution")
    )
    report = sync(src, target)
    (row,) = target.catalog.query(ML_SCHEMA, "Execution", {"RID": report.target_rid(rid)})
    (want,) = src.catalog.query(ML_SCHEMA, "Execution", {"RID": rid})
    assert (row["Status"], row["Status_Detail"]) == (want["Status"], want["Status_Detail"])


def test_plain_status_updates_of_an_older_journal_replay_as_compare_and_set(tmp_path: Path, live: Any) -> None:
    """A journal written before status writes were compare-and-set holds plain Updates of Execution.Status;
    adapters that refuse those (helper "status") still receive the changes, as compare-and-set effects."""
    if not hasattr(effects_module, "SetStatus"):
        pytest.skip("SetStatus (compare-and-set of Execution.Status) is not on this branch yet")
    import json

    from deriva_ml.core.definitions import ML_SCHEMA

    from .test_sync import record_offline

    target, _er = live
    src = offline(tmp_path)
    rid = record_offline(src, "legacy")
    # rewrite the journal as an older version wrote it: each status write a plain Update
    conn = sqlite3.connect(src.catalog.path)  # type: ignore[attr-defined]
    for seq, text in conn.execute("SELECT seq, entry FROM _dml_journal").fetchall():
        doc = json.loads(text)
        effects = doc["batch"]["effects"]
        for i, e in enumerate(effects):
            if e["kind"] == "set_status":
                rows = [
                    {"RID": w["rid"], "Status": w["status"], "Status_Detail": w["detail"]}
                    | ({"Duration": w["duration"]} if w.get("duration") else {})
                    for w in e["writes"]
                ]
                effects[i] = {"kind": "update", "schema": ML_SCHEMA, "table": "Execution", "rows": rows, "key": ["RID"]}
        conn.execute("UPDATE _dml_journal SET entry = ? WHERE seq = ?", (json.dumps(doc), seq))
    conn.commit()
    conn.close()
    assert any(
        isinstance(e, Update) and any("Status" in r for r in e.rows)
        for entry in read_journal(src.catalog)
        for e in entry.batch.effects
    )
    report = sync(src, target)
    (row,) = target.catalog.query(ML_SCHEMA, "Execution", {"RID": report.target_rid(rid)})
    (want,) = src.catalog.query(ML_SCHEMA, "Execution", {"RID": rid})
    assert (row["Status"], row["Status_Detail"]) == (want["Status"], want["Status_Detail"])


def test_progress_of_an_earlier_version_is_carried_over(tmp_path: Path) -> None:
    import json

    src = offline(tmp_path)
    target = DerivaML("local", "target", home=tmp_path / "target")
    (rid,) = add_subjects(src, ["a"])
    first = sync(src, target)
    state = Path(src.catalog.path).parent / "sync-local_target.sqlite"  # type: ignore[attr-defined]
    assert state.exists()
    state.unlink()
    legacy = state.with_suffix(".json")
    legacy.write_text(json.dumps({"last_seq": first.last_seq, "rid_map": dict(first.rid_map)}))
    again = sync(src, target)
    assert (again.entries_read, again.batches_applied) == (0, 0)
    assert again.target_rid(rid) == first.target_rid(rid)
