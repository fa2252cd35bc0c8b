"""Journal: one entry per applied batch, written by the embedded catalog in the transaction that commits it;
replay into a fresh catalog reproduces the content."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from catalog_support import DOMAIN, domain_tables

from deriva_ml.catalog.journal import read_journal, replay
from deriva_ml.catalog.port import ML_SCHEMA, Journaled
from deriva_ml.catalog.sqlite import open_local_catalog
from deriva_ml.core.effects import Batch, Delete, Insert, Ref, SetStatus, StatusWrite
from deriva_ml.core.errors import ConflictError
from deriva_ml.core.schema_defs import SYSTEM_COLUMNS


def _content(cat: Any, schema: str, table: str, rid_map: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for r in cat.query(schema, table):
        rows.append(
            {
                k: rid_map.get(v, v) if isinstance(v, str) else v
                for k, v in r.items()
                if k not in SYSTEM_COLUMNS and k not in ("ID", "URI")
            }
        )
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


def test_record_and_replay(tmp_path: Path) -> None:
    plain = open_local_catalog("src", tmp_path)
    plain.create_tables(domain_tables())  # before journalling, like the target's tables below
    assert plain.journal_lines() == []
    plain.close()
    src = cat = open_local_catalog("src", tmp_path, journal=True)
    assert isinstance(src, Journaled)
    journal = src
    r1 = cat.apply(
        Batch(
            [
                Insert(ML_SCHEMA, "Workflow", [{"Name": "w", "URL": "u"}], ["w"]),
                Insert(ML_SCHEMA, "Execution", [{"Workflow": Ref("w"), "Status": "Created"}], ["e"]),
                Insert(DOMAIN, "Subject", [{"Name": "a", "Tags": ["x"]}, {"Name": "b", "Flag": True}]),
            ]
        )
    )
    subject_b = r1.inserted[2][1]["RID"]
    with pytest.raises(ConflictError):
        cat.apply(Batch([Insert(DOMAIN, "Subject", [{"Name": "a"}])]))
    cat.apply(Batch([SetStatus([StatusWrite(r1.rids["e"], "Created", "Initializing", "started")])]))
    cat.apply(
        Batch(
            [
                Insert(ML_SCHEMA, "Dataset", [{"Description": "d"}], ["d"]),
                Insert(
                    ML_SCHEMA,
                    "Dataset_Execution",
                    [{"Dataset": Ref("d"), "Execution": r1.rids["e"], "Asset_Role": "Output"}],
                ),
                Insert(DOMAIN, "Subject", [{"Name": "a"}, {"Name": "c"}], on_conflict_skip=True),
            ]
        )
    )
    cat.apply(Batch([Delete(DOMAIN, "Subject", "RID", [subject_b])]))

    entries = list(read_journal(journal))
    assert [e.seq for e in entries] == [1, 2, 3, 4]  # the failed batch is not journalled
    lines = src.journal_lines()
    assert all(
        json.loads(line)["batch"]["effects"][0]["kind"] in {"insert", "update", "delete", "set_status"}
        for line in lines
    )
    assert '{"$ref":"w"}' in lines[0]

    # make the target's RIDs differ from the source's
    dst = open_local_catalog("dst", tmp_path)
    dst.create_tables(domain_tables())
    dst.apply(Batch([Insert(ML_SCHEMA, "Workflow", [{"Name": f"pad{i}"} for i in range(7)])]))
    dst.apply(Batch([Delete(ML_SCHEMA, "Workflow", "Name", [f"pad{i}" for i in range(7)])]))
    rid_map = replay(journal, dst)
    assert rid_map[r1.rids["e"]] != r1.rids["e"]
    for schema, table in [
        (ML_SCHEMA, "Workflow"),
        (ML_SCHEMA, "Execution"),
        (ML_SCHEMA, "Dataset"),
        (ML_SCHEMA, "Dataset_Execution"),
        (DOMAIN, "Subject"),
    ]:
        assert _content(src, schema, table, rid_map) == _content(dst, schema, table, {}), table
    ex = dst.query(ML_SCHEMA, "Execution")[0]
    assert ex["Status"] == "Initializing" and ex["RID"] == rid_map[r1.rids["e"]]
    # journalling continues the sequence when reopened
    src.close()
    cat2 = open_local_catalog("src", tmp_path, journal=True)
    cat2.apply(Batch([Insert(DOMAIN, "Subject", [{"Name": "z"}])]))
    assert [e.seq for e in read_journal(cat2)][-1] == 5
    assert [e.seq for e in read_journal(cat2, after=3)] == [4, 5]
    cat2.close()
    dst.close()


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    """A journal copied to a JSON-lines file reads the same; a torn last line (a crash mid-write) is ignored."""
    src = open_local_catalog("src", tmp_path, journal=True)
    src.apply(Batch([Insert(ML_SCHEMA, "Workflow", [{"Name": "w"}])]))
    journal = tmp_path / "j.jsonl"
    journal.write_text("".join(line + "\n" for line in src.journal_lines()))
    with open(journal, "a") as f:
        f.write('{"seq": 2, "batch": {"eff')
    assert [e.batch for e in read_journal(journal)] == [e.batch for e in read_journal(src)]
    assert len(list(read_journal(journal))) == 1
    src.close()


def test_reads_are_not_journalled_and_an_unjournalled_catalog_writes_none(tmp_path: Path) -> None:
    cat = open_local_catalog("src", tmp_path, journal=True)
    res = cat.apply(
        Batch(
            [
                Insert(ML_SCHEMA, "Workflow", [{"Name": "w"}], ["w"]),
                Insert(ML_SCHEMA, "Execution", [{"Workflow": Ref("w")}, {"Workflow": Ref("w")}]),
            ]
        )
    )
    got = cat.query_linked(
        ML_SCHEMA, "Execution", via="Workflow", target_schema=ML_SCHEMA, target_table="Workflow", columns=["RID"]
    )
    assert got == [{"RID": res.rids["w"]}]
    cat.query(ML_SCHEMA, "Execution")
    assert len(list(read_journal(cat))) == 1  # reads are not journalled
    cat.close()
    plain = open_local_catalog("other", tmp_path)
    plain.apply(Batch([Insert(ML_SCHEMA, "Workflow", [{"Name": "w"}])]))
    assert list(read_journal(plain)) == []
    plain.close()


def test_catalog_capabilities_are_protocols(catalog: Any, tmp_path: Path) -> None:
    """Every adapter joins through an association in one request; only the embedded catalog journals."""
    from deriva_ml.catalog.port import Catalog, LinkedQueries
    from deriva_ml.catalog.sqlite import SQLiteCatalog

    assert isinstance(catalog, Catalog) and isinstance(catalog, LinkedQueries)
    assert isinstance(catalog, Journaled) == isinstance(catalog, SQLiteCatalog)
