"""One converter for every wire format (``deriva_ml.core.convert``): the bytes of every format are those
the library wrote before the converters were merged (goldens below were produced by the code before),
and files in those formats still read.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deriva_ml.cache.policy import CacheEntry, entry_from_json, entry_to_json
from deriva_ml.catalog._codec import dump_model, load_model
from deriva_ml.catalog.journal import JournalEntry, decode_entry, encode_entry
from deriva_ml.core.codec import dumps, from_jsonable, loads
from deriva_ml.core.convert import converter, json_text, make_converter
from deriva_ml.core.effects import Batch, BatchResult, Delete, Insert, Ref, SetStatus, StatusWrite, Update
from deriva_ml.core.errors import ConfigurationError
from deriva_ml.core.records import (
    AssetSpec,
    DatasetSpec,
    DatasetVersion,
    ExecutionConfiguration,
    ExecutionRecord,
    StatusChange,
    Term,
    Workflow,
)
from deriva_ml.core.schema_defs import CatalogModel, ColumnDef, ForeignKeyDef, KeyDef, TableDef
from deriva_ml.core.status import Status
from deriva_ml.execution._manifest import Manifest
from deriva_ml.execution._sweep import JobOutcome, SweepDir, SweepInfo

GOLDEN = {
    "record": '{"rid": "1-ABC", "workflow_rid": "1-WF", "description": "d é", "status": "Running", "status_detail": "x", "start_time": "2026-01-02T03:04:05.678000+00:00", "stop_time": null, "history": [{"from_status": null, "to_status": "Created", "detail": "", "at": "2026-01-02T03:04:05.678000+00:00"}, {"from_status": "Created", "to_status": "Running", "detail": "go", "at": "2026-01-02T03:04:06.678000+00:00"}]}',
    "term": '{"name": "n", "description": "dd", "synonyms": ["a", "b"], "id": "i", "uri": "u", "rid": "1-T"}',
    "workflow": '{"name": "W", "workflow_type": ["Training"], "description": "x", "url": "https://g/x", "checksum": "abc", "version": "1.0", "rid": "1-W", "is_notebook": false}',
    "config": '{\n  "datasets": [\n    {\n      "rid": "1-D",\n      "version": {\n        "major": 1,\n        "minor": 2,\n        "patch": 3\n      },\n      "materialize": true,\n      "description": ""\n    },\n    {\n      "rid": "1-E",\n      "version": null,\n      "materialize": true,\n      "description": ""\n    }\n  ],\n  "assets": [\n    {\n      "rid": "1-A",\n      "cache": true\n    }\n  ],\n  "workflow": {\n    "name": "W",\n    "workflow_type": [\n      "Training"\n    ],\n    "description": "x",\n    "url": "https://g/x",\n    "checksum": "abc",\n    "version": "1.0",\n    "rid": "1-W",\n    "is_notebook": false\n  },\n  "description": "c",\n  "argv": [\n    "a",\n    "b"\n  ],\n  "config_choices": {\n    "k": "v"\n  }\n}',
    "batch": '{"effects": [{"kind": "insert", "schema": "s", "table": "T", "rows": [{"A": 1}], "labels": ["x"], "on_conflict_skip": false}, {"kind": "insert", "schema": "s", "table": "U", "rows": [{"B": {"$ref": "x"}, "L": [1, "é"]}], "labels": [], "on_conflict_skip": false}, {"kind": "update", "schema": "s", "table": "T", "rows": [{"RID": "1-A", "C": null}], "key": ["RID"]}, {"kind": "delete", "schema": "s", "table": "T", "column": "RID", "values": ["1-B"], "where": {"X": 1}}, {"kind": "set_status", "schema": "deriva-ml", "table": "Execution", "writes": [{"rid": "1-E", "expected": "Pending", "status": "Running", "detail": "d", "duration": "1.5 s"}], "skip_lost": false}]}',
    "result_core": '{"rids": {"x": "1-NEW"}, "inserted": [[{"RID": "1-NEW", "A": 1}], [{"RID": "1-U", "B": "1-NEW"}], [], [], []]}',
    "cache": '{"rid": "1-A", "md5": "00000000000000000000000000000000", "filename": "f.bin", "path": "a/b", "size": 3, "mtime_ns": 4, "last_used": 5.5, "created": 6.0}',
    "journal": '{"seq":3,"batch":{"effects":[{"kind":"insert","schema":"s","table":"T","rows":[{"A":1}],"labels":["x"],"on_conflict_skip":false},{"kind":"insert","schema":"s","table":"U","rows":[{"B":{"$ref":"x"},"L":[1,"é"]}],"labels":[],"on_conflict_skip":false},{"kind":"update","schema":"s","table":"T","rows":[{"RID":"1-A","C":null}],"key":["RID"]},{"kind":"delete","schema":"s","table":"T","column":"RID","values":["1-B"],"where":{"X":1}},{"kind":"set_status","schema":"deriva-ml","table":"Execution","writes":[{"rid":"1-E","expected":"Pending","status":"Running","detail":"d","duration":"1.5 s"}],"skip_lost":false}]},"result":{"rids":{"x":"1-NEW"},"inserted":[{"rids":["1-NEW"]},{"rids":["1-U"]},[],[],[]]}}',
    "model": '{"tables": [{"schema": "s", "name": "T", "columns": [{"name": "A", "type": "int4", "nullok": false, "default": 3, "comment": "c"}, {"name": "B", "type": "text", "nullok": true, "default": null, "comment": ""}], "keys": [{"columns": ["A"], "name": null}], "foreign_keys": [{"columns": ["B"], "pk_schema": "s", "pk_table": "U", "pk_columns": ["RID"], "on_delete": "CASCADE", "name": "fk"}], "kind": "table", "comment": "t"}], "schema_names": ["s", "e"]}',
}


t0 = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
rec = ExecutionRecord(
    rid="1-ABC",
    workflow_rid="1-WF",
    description="d é",
    status=Status.running,
    status_detail="x",
    start_time=t0,
    history=(
        StatusChange(None, Status.created, "", t0),
        StatusChange(Status.created, Status.running, "go", t0 + timedelta(seconds=1)),
    ),
)
term = Term(name="n", description="dd", synonyms=("a", "b"), id="i", uri="u", rid="1-T")
wf = Workflow(
    name="W", workflow_type=["Training"], description="x", url="https://g/x", checksum="abc", version="1.0", rid="1-W"
)
cfg = ExecutionConfiguration(
    workflow=wf,
    description="c",
    datasets=[DatasetSpec("1-D", DatasetVersion(1, 2, 3)), DatasetSpec("1-E")],
    assets=[AssetSpec("1-A", cache=True)],
    argv=("a", "b"),
    config_choices={"k": "v"},
)
batch = Batch(
    [
        Insert("s", "T", [{"A": 1}], labels=("x",)),
        Insert("s", "U", [{"B": Ref("x"), "L": [1, "é"]}]),
        Update("s", "T", [{"RID": "1-A", "C": None}]),
        Delete("s", "T", "RID", ("1-B",), {"X": 1}),
        SetStatus([StatusWrite("1-E", Status.pending, Status.running, "d", "1.5 s")]),
    ]
)
res = BatchResult(
    rids={"x": "1-NEW"}, inserted=(({"RID": "1-NEW", "A": 1},), ({"RID": "1-U", "B": "1-NEW"},), (), (), ())
)
model = CatalogModel(
    tables=(
        TableDef(
            "s",
            "T",
            columns=(ColumnDef("A", "int4", False, 3, "c"), ColumnDef("B")),
            keys=(KeyDef(("A",)),),
            foreign_keys=(ForeignKeyDef(("B",), "s", "U", ("RID",), "CASCADE", "fk"),),
            comment="t",
        ),
    ),
    schema_names=("s", "e"),
)


RECORDS = {"record": rec, "term": term, "workflow": wf}


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_records_are_written_as_before_and_read_back(name):
    assert dumps(RECORDS[name], indent=None) == GOLDEN[name]
    assert loads(GOLDEN[name], type(RECORDS[name])) == RECORDS[name]


def test_configuration_json_is_written_as_before_and_read_back():
    assert dumps(cfg) == GOLDEN["config"]
    assert loads(GOLDEN["config"], ExecutionConfiguration) == cfg


def test_batch_and_result_are_written_as_before_and_read_back():
    assert dumps(batch, indent=None) == GOLDEN["batch"]
    assert dumps(loads(GOLDEN["batch"], Batch), indent=None) == GOLDEN["batch"]
    assert dumps(res, indent=None) == GOLDEN["result_core"]
    again = loads(GOLDEN["result_core"], BatchResult)
    assert again.rids == res.rids and [list(r) for r in again.inserted] == [list(r) for r in res.inserted]


def test_journal_line_is_written_as_before_and_read_back():
    entry = JournalEntry(seq=3, batch=batch, result=res)
    assert encode_entry(entry) == GOLDEN["journal"]
    back = decode_entry(GOLDEN["journal"])
    assert encode_entry(back) == GOLDEN["journal"]
    assert back.seq == 3 and back.result.rids == {"x": "1-NEW"}


def test_catalog_model_is_written_as_before_and_read_back():
    assert json.dumps(dump_model(model)) == GOLDEN["model"]
    assert load_model(json.loads(GOLDEN["model"])) == model


def test_cache_entry_is_written_as_before_and_read_back():
    entry = CacheEntry("1-A", "0" * 32, "f.bin", "a/b", 3, 4, 5.5, 6.0)
    assert json.dumps(entry_to_json(entry)) == GOLDEN["cache"]
    assert entry_from_json(json.loads(GOLDEN["cache"])) == entry
    with pytest.raises(ConfigurationError, match="malformed asset-cache index entry"):
        entry_from_json({"rid": "1-A"})


def test_sweep_files_are_written_as_before(tmp_path):
    sweep = SweepDir(tmp_path)
    sweep.record_job(JobOutcome(2, Status.failed, "1-C", "boom é"))
    text = (sweep.state_dir / "jobs" / "2.json").read_text()
    before = json.dumps({"num": 2, "status": "Failed", "execution_rid": "1-C", "error": "boom é"}, indent=2)
    assert text == before
    assert sweep.job_outcomes() == [JobOutcome(2, Status.failed, "1-C", "boom é")]
    sweep.write_sweep(SweepInfo(("a=1", "b=2"), {"k": "v"}, 2, {"pid": 1}))
    before = json.dumps(
        {"overrides": ["a=1", "b=2"], "choices": {"k": "v"}, "expected_jobs": 2, "launcher": {"pid": 1}},
        indent=2,
        sort_keys=True,
    )
    assert sweep.sweep_file.read_text() == before
    assert sweep.read_sweep() == SweepInfo(("a=1", "b=2"), {"k": "v"}, 2, {"pid": 1})


def test_a_malformed_job_file_is_a_named_configuration_error(tmp_path):
    sweep = SweepDir(tmp_path)
    (sweep.state_dir / "jobs").mkdir(parents=True)
    (sweep.state_dir / "jobs" / "1.json").write_text('{"status": "Failed"}')
    with pytest.raises(ConfigurationError, match="JobOutcome"):
        sweep.job_outcomes()


def test_manifest_columns_are_written_as_before(tmp_path):
    m = Manifest(tmp_path / "manifest.sqlite")
    meta = {"b": Path("/x"), "a": "é", "n": 1}
    m.register(schema="s", asset_table="T", path="outputs/T/f", filename="f", asset_types=["Model", "é"], metadata=meta)
    types, stored = m._db.execute("SELECT asset_types, metadata FROM entry").fetchone()
    assert types == json.dumps(["Model", "é"])
    assert stored == json.dumps(meta, sort_keys=True, default=str)
    m.set_metadata("outputs/T/f", "c", datetime(2026, 1, 1, tzinfo=UTC))
    entry = m.get("outputs/T/f")
    assert entry is not None and entry.metadata == {"a": "é", "b": "/x", "c": "2026-01-01 00:00:00+00:00", "n": 1}
    assert entry.asset_types == ("Model", "é")


def test_record_fields_get_the_raw_value_and_name_it_when_wrong():
    # cattrs' default str hook would turn 3 into "3"; the record's own converter must see (and refuse) it
    with pytest.raises(ConfigurationError, match="Term.name"):
        from_jsonable({"name": 3}, Term)
    with pytest.raises(ConfigurationError, match="ExecutionRecord"):
        from_jsonable({"rid": "not a rid"}, ExecutionRecord)
    with pytest.raises(ConfigurationError):
        from_jsonable({"status": "Running"}, ExecutionRecord)  # rid missing


def test_one_converter_serves_every_format():
    assert converter() is converter()
    fresh = make_converter()
    assert fresh is not converter()
    assert fresh.unstructure(rec) == converter().unstructure(rec)
    from deriva_ml.catalog import _codec

    assert _codec.make_converter().unstructure(res) == converter().unstructure(res)


def test_json_text_writes_plain_data_as_is_and_records_through_the_converter():
    assert json_text({"b": 1, "a": [1, "é"]}, sort_keys=True) == '{"a": [1, "é"], "b": 1}'
    assert json_text({"a": "é"}, ascii_only=True, compact=True) == '{"a":"\\u00e9"}'
    assert json_text(DatasetVersion(1, 2, 3)) == '{"major": 1, "minor": 2, "patch": 3}'
    assert json_text({"p": Path("/x")}) == '{"p": "/x"}'


def test_import_deriva_ml_does_not_import_cattrs():
    code = "import sys, deriva_ml\nprint('cattrs' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
