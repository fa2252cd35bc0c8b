"""Issue 16, items 8 and 9: errors found before anything is written, and messages that say what is wrong.

In-process on the embedded catalog and the ERMrest fake (the live leg where the server is configured).
"""

from __future__ import annotations

import socket

import pytest

from deriva_ml import DerivaML, ExecutionConfiguration
from deriva_ml.core.definitions import ML_SCHEMA
from deriva_ml.core.errors import (
    CatalogBusy,
    CatalogError,
    CatalogUnreachable,
    InvalidFileName,
    NotAVocabulary,
    NotFound,
    RIDNotFound,
    UnknownCatalog,
    UnknownTable,
    WrongTable,
)
from deriva_ml.dataset.aux_classes import DatasetSpec


def _execution_rows(ml: DerivaML) -> int:
    return len(ml.catalog.query(ML_SCHEMA, "Execution", columns=["RID"]))


def test_a_missing_dataset_version_is_found_before_the_execution_row_is_written(ml, workflow):
    with ml.create_execution(ExecutionConfiguration(workflow=workflow, description="make data")) as exe:
        ds = exe.create_dataset(description="d", dataset_types=[])
    before = _execution_rows(ml)
    bad = ExecutionConfiguration(workflow=workflow, datasets=[DatasetSpec(rid=ds.dataset_rid, version="9.9.9")])
    with pytest.raises(NotFound, match=r"has no version 9\.9\.9; its versions: 0\.1\.0"):
        ml.create_execution(bad)
    assert _execution_rows(ml) == before  # no Failed row left behind
    # the existing version is accepted
    good = ExecutionConfiguration(workflow=workflow, datasets=[DatasetSpec(rid=ds.dataset_rid, version="0.1.0")])
    ml.create_execution(good)
    assert _execution_rows(ml) == before + 1


def test_a_rid_of_another_table_names_the_table_it_belongs_to(ml, workflow):
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow))
    rid = exe.execution_rid
    with pytest.raises(WrongTable, match=r"is a row of table 'deriva-ml:Execution', not of table 'Dataset'") as err:
        ml.lookup_dataset(rid)
    assert isinstance(err.value, RIDNotFound)  # old catchers still work
    before = _execution_rows(ml)
    with pytest.raises(WrongTable, match="deriva-ml:Execution"):
        ml.create_execution(ExecutionConfiguration(workflow=workflow, datasets=[DatasetSpec(rid=rid)]))
    assert _execution_rows(ml) == before
    wf_rid = ml.find_workflows()[0].rid
    with pytest.raises(WrongTable, match=r"row of table 'deriva-ml:Workflow', not of table 'Execution'"):
        ml.lookup_execution(wf_rid)


def test_add_term_on_a_table_that_is_not_a_vocabulary(ml):
    with pytest.raises(NotAVocabulary) as err:
        ml.add_term("Workflow", "x")
    msg = str(err.value)
    assert msg.startswith("'Workflow' is not a vocabulary table; vocabularies: ")
    assert "'Workflow_Type'" in msg and "(not a vocabulary)" not in msg
    assert isinstance(err.value, UnknownTable)


def test_rename_file_dotdot_is_not_allowed(ml, workflow, tmp_path):
    src = tmp_path / "x.txt"
    src.write_text("x")
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow))
    for file_name in (str(src), "new.txt", str(tmp_path / "missing" / "y.txt")):
        with pytest.raises(
            InvalidFileName, match=r"rename_file='\.\.' is not a valid file name: '\.\.' is not allowed"
        ):
            exe.asset_file_path("Execution_Asset", file_name, rename_file="..")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_closed_port_is_unreachable_not_busy(tmp_path):
    port = _closed_port()
    with pytest.raises(CatalogUnreachable, match=rf"cannot reach 127\.0\.0\.1:{port}: .*[Cc]onnection refused") as err:
        DerivaML(f"127.0.0.1:{port}", "1", credential={}, home=tmp_path, session_config={"retry_connect": 0})
    assert isinstance(err.value, CatalogError) and isinstance(err.value, ConnectionError)
    assert not isinstance(err.value, CatalogBusy)


def test_opening_an_unknown_embedded_catalog_read_only_creates_nothing(tmp_path):
    DerivaML("local", "real", home=tmp_path).close()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(UnknownCatalog, match=r"no catalog 'demoo' under .*; existing catalogs: 'real'"):
        DerivaML("local", "demoo", home=tmp_path, create=False)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    empty = tmp_path / "empty"
    with pytest.raises(UnknownCatalog, match="existing catalogs: none"):
        DerivaML("local", "x", home=empty, create=False)
    assert not empty.exists()
    DerivaML("local", "real", home=tmp_path, create=False).close()  # an existing one opens
