"""Every status change is a compare-and-set against the catalog: two handles, two processes, raw writes,
abort_stale, retries and a run that ended itself — on the embedded catalog and on ERMrest over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest

from deriva_ml import DerivaML, Status
from deriva_ml.catalog.port import ML_SCHEMA
from deriva_ml.core.effects import Batch, Insert, Update
from deriva_ml.core.errors import StatusConflict, ValidationError
from deriva_ml.core.execution_rows import parse_duration as _parse_duration
from deriva_ml.core.execution_rows import record_from_row as _record_from_row
from deriva_ml.core.status import TRANSITIONS
from deriva_ml.testing import make_configuration

TESTS = Path(__file__).resolve().parents[1]


def _row_status(ml: DerivaML, rid: str) -> str:
    return ml.catalog.query(ML_SCHEMA, "Execution", {"RID": rid}, columns=["Status"])[0]["Status"]


def _legal(history) -> bool:
    return all(h.from_status is None or h.to_status in TRANSITIONS[h.from_status] for h in history)


def test_two_handles_cannot_store_an_illegal_sequence(ml: DerivaML) -> None:
    exe = ml.create_execution(make_configuration(description="two handles"))
    h1, h2 = ml.restore_execution(exe.execution_rid), ml.restore_execution(exe.execution_rid)
    assert h1.status is h2.status is Status.pending
    h1.execution_start()
    with pytest.raises(StatusConflict, match="'Running'"):
        h2.execution_start()  # h2 still believes Pending: its Pending -> Running loses
    assert h2.status is Status.running  # refreshed from the catalog
    h1.execution_stop()
    with pytest.raises(StatusConflict, match="'Completed'"):
        h2.execution_stop(RuntimeError("late failure"))  # Completed -> Failed never reaches the catalog
    assert h2.status is Status.completed
    with pytest.raises(Exception, match="Completed"):
        h2.execution_start()  # Completed is terminal: refused by transition() before any I/O
    assert _row_status(ml, exe.execution_rid) == "Completed"
    assert _legal(h1.record.history) and _legal(h2.record.history)
    assert ml.lookup_execution(exe.execution_rid).status is Status.completed


def test_owner_cannot_complete_after_abort_stale(backend, ml: DerivaML) -> None:
    exe = ml.create_execution(make_configuration(description="aborted under me"))
    exe.execution_start()
    other = backend()
    time.sleep(0.01)
    aborted = other.abort_stale_executions(older_than=timedelta(0))
    assert [r.rid for r in aborted] == [exe.execution_rid]
    assert aborted[0].history[-1].from_status is Status.running and aborted[0].duration is not None
    with pytest.raises(StatusConflict, match="'Aborted'"), exe:
        pass
    assert exe.status is Status.aborted
    assert _row_status(ml, exe.execution_rid) == "Aborted"


def test_raw_writes_are_refused(ml: DerivaML) -> None:
    exe = ml.create_execution(make_configuration(description="raw"))
    rid = exe.execution_rid
    for status in ("Running", "Completed", "Bogus"):
        with pytest.raises(ValidationError):
            ml.catalog.apply(Batch([Update(ML_SCHEMA, "Execution", [{"RID": rid, "Status": status}])]))
        with pytest.raises(ValidationError):
            ml.catalog.apply(Batch([Insert(ML_SCHEMA, "Execution", [{"Status": status}])]))
    assert _row_status(ml, rid) == "Pending"


def test_a_write_behind_the_handles_back_is_seen(ml: DerivaML, backend) -> None:
    """Another writer moved the row on (here through the other handle's adapter): the stale handle loses."""
    exe = ml.create_execution(make_configuration(description="behind"))
    other = backend().restore_execution(exe.execution_rid)
    other.update_status(Status.failed, "given up elsewhere")
    with pytest.raises(StatusConflict, match="'Failed'"):
        exe.execution_start()
    assert exe.status is Status.failed


def test_retry_resets_times_and_keeps_history(ml: DerivaML) -> None:
    exe = ml.create_execution(make_configuration(description="retry"))
    with pytest.raises(RuntimeError), exe:
        raise RuntimeError("boom")
    failed = exe.record
    assert failed.status is Status.failed and failed.start_time and failed.stop_time
    again = ml.restore_execution(exe.execution_rid)
    again.update_status(Status.pending, "Retrying")
    assert again.record.start_time is None and again.record.stop_time is None
    row = ml.catalog.query(ML_SCHEMA, "Execution", {"RID": exe.execution_rid})[0]
    assert row["Duration"] is None  # the failed attempt's duration no longer describes the row
    again.execution_start()
    assert again.record.start_time >= failed.stop_time and again.record.stop_time is None
    again.execution_stop()
    statuses = [h.to_status for h in again.record.history]
    assert statuses[-4:] == [Status.failed, Status.pending, Status.running, Status.completed]
    assert _legal(again.record.history)


def test_completing_inside_with_is_kept(ml: DerivaML) -> None:
    """Issue 16.7: update_status(Status.completed) inside ``with`` stays Completed; __exit__ does not raise."""
    with ml.create_execution(make_configuration(description="self-completed")) as exe:
        exe.update_status(Status.completed, "done early")
    assert exe.status is Status.completed and exe.record.status_detail == "done early"
    assert _row_status(ml, exe.execution_rid) == "Completed"


def test_abort_stale_is_a_constant_number_of_requests(backend) -> None:
    ml = backend()
    if not hasattr(ml.catalog, "request_count"):
        pytest.skip("request counts are an ERMrest measure")
    wf = ml.add_workflow(make_configuration().workflow)
    n = 1000
    rows = [{"Workflow": wf, "Status": "Created", "Description": f"e{i}"} for i in range(n)]
    ml.catalog.apply(Batch([Insert(ML_SCHEMA, "Execution", rows)]))
    time.sleep(0.01)
    before = ml.catalog.request_count
    aborted = ml.abort_stale_executions(older_than=timedelta(0))
    used = ml.catalog.request_count - before
    assert len(aborted) == n
    assert used <= 3, used  # one query, one conditional PUT per 1,000 rows (was 1,006)
    statuses = {r["Status"] for r in ml.catalog.query(ML_SCHEMA, "Execution", columns=["Status"])}
    assert statuses == {"Aborted"}
    assert all(r.history[-1].from_status is Status.created for r in aborted)


def test_unknown_status_read_back_raises() -> None:
    row = {"RID": "1-ABCD", "Status": "Bogus", "RCT": "2024-01-01T00:00:00+00:00"}
    with pytest.raises(ValidationError, match=r"1-ABCD.*'Bogus'"):
        _record_from_row(row)
    assert _record_from_row({"RID": "1-ABCD", "Status": None}).status is Status.created


def test_unknown_status_written_by_a_foreign_client_is_reported(backend, request) -> None:
    _not_live(request, "writes behind the adapter through SQLite or the fake's store")
    ml = backend()
    exe = ml.create_execution(make_configuration(description="foreign"))
    servers = getattr(ml, "servers", None)
    if servers is None:  # embedded: a foreign writer bypassing the adapter meets the trigger
        import sqlite3

        with pytest.raises(sqlite3.IntegrityError, match="not an execution status"):
            ml.catalog.connection.execute(
                'UPDATE "deriva-ml:Execution" SET Status = ? WHERE RID = ?', ("Bogus", exe.execution_rid)
            )
        return
    import requests

    er = servers[0]
    r = requests.put(
        f"http://{er.host}/ermrest/catalog/{ml.catalog.catalog_id}/attributegroup/deriva-ml:Execution/RID;Status",
        json=[{"RID": exe.execution_rid, "Status": "Bogus"}],
        timeout=10,
    )
    assert r.status_code == 200  # the server itself does not constrain the value
    with pytest.raises(ValidationError, match=rf"{exe.execution_rid}.*'Bogus'"):
        ml.lookup_execution(exe.execution_rid)


def test_reference_duration_format_is_read() -> None:
    assert _parse_duration("0.0H 0.0min 0.1462sec") == pytest.approx(0.1462)
    assert _parse_duration("1.0H 2.0min 3.5sec") == pytest.approx(3723.5)
    assert _parse_duration("1:02:03.500000") == pytest.approx(3723.5)
    rec = _record_from_row(
        {
            "RID": "2S0",
            "Status": "Completed",
            "Status_Detail": "done",
            "Duration": "0.0H 0.0min 0.1462sec",
            "RCT": "2025-01-01T10:00:00+00:00",
            "RMT": "2025-01-01T10:00:01+00:00",
        }
    )
    assert rec.start_time is not None and rec.stop_time is not None
    assert rec.duration == pytest.approx(0.1462)
    assert [h.to_status for h in rec.history] == [Status.completed]


def test_embedded_catalog_made_before_the_trigger_is_migrated(tmp_path: Path) -> None:
    import sqlite3

    from deriva_ml.catalog.sqlite import open_local_catalog

    cat = open_local_catalog("old", tmp_path)
    conn = cat.connection
    for t in ("insert", "update"):
        conn.execute(f'DROP TRIGGER "deriva-ml:Execution:status:{t}"')
    conn.execute(
        'INSERT INTO "deriva-ml:Execution" (RID, RCT, RMT, _seq, Status) VALUES (?,?,?,?,?)',
        ("9-0000", "t", "t", 0, "Bogus"),
    )
    cat.close()
    cat = open_local_catalog("old", tmp_path)  # reopening adds the constraint
    with pytest.raises(sqlite3.IntegrityError):
        cat.connection.execute('UPDATE "deriva-ml:Execution" SET Status = ? WHERE RID = ?', ("Weird", "9-0000"))
    cat.close()


# ------------------------------------------------------------------------------------------ two processes


def _not_live(request: pytest.FixtureRequest, why: str) -> None:
    if request.node.callspec.params.get("backend") == "live":
        pytest.skip(f"no live leg: {why}")


CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    sys.path[:0] = [sys.argv[5], sys.argv[6]]
    from deriva_ml import DerivaML
    from deriva_ml.core.errors import StatusConflict

    home, kind, rid, go = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
    if kind == "embedded":
        ml = DerivaML("local", "test", home=home)
    else:
        from deriva_ml.catalog.ermrest import ErmrestCatalog
        from deriva_ml.store.hatrac import HatracObjectStore
        import requests
        host, cid, hatrac = sys.argv[7], sys.argv[8], sys.argv[9]
        session = requests.Session()
        session.trust_env = False
        ml = DerivaML(host, cid, catalog=ErmrestCatalog(host, cid, scheme="http", credential={}),
                      store=HatracObjectStore(hatrac, session=session), home=home)
    exe = ml.restore_execution(rid)
    print("READY", exe.status.value, flush=True)
    while not go.exists():
        time.sleep(0.01)
    try:
        exe.execution_start()
        print("WON", flush=True)
    except StatusConflict as e:
        print("LOST", e.actual, flush=True)
    """
)


@pytest.mark.slow
def test_two_processes_race_for_one_transition(backend, tmp_path: Path, request) -> None:
    _not_live(
        request, "its child processes reconnect through the fakes; the live race is tests/catalog/test_status_cas.py"
    )
    ml = backend()
    exe = ml.create_execution(make_configuration(description="race"))
    servers = getattr(ml, "servers", None)
    kind = "embedded" if servers is None else "ermrest"
    extra: list[str] = []
    if servers is not None:
        er, hs = servers
        extra = [er.host, ml.catalog.catalog_id, hs.url]
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    go = tmp_path / "go"
    home = os.environ["DERIVA_ML_HOME"]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                home,
                kind,
                exe.execution_rid,
                str(go),
                str(TESTS / "catalog"),
                str(TESTS / "store"),
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for p in procs:
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line.startswith("READY Pending"), line + p.stderr.read()  # type: ignore[union-attr]
    go.write_text("go")
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outs.append(out.strip())
    assert sorted(o.split()[0] for o in outs) == ["LOST", "WON"], outs
    assert [o for o in outs if o.startswith("LOST")] == ["LOST Running"]
    assert _row_status(ml, exe.execution_rid) == "Running"
    assert json.dumps(outs)


DIES_EARLY = textwrap.dedent(
    """
    import os, signal, sys
    from deriva_ml import DerivaML
    from deriva_ml.execution._execution import Execution
    from deriva_ml.testing import make_configuration

    ml = DerivaML("local", "test", home=sys.argv[1])
    def die(self, **kw):
        print("RID", self.execution_rid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)   # the process dies before its inputs are fetched
    Execution._initialize = die
    ml.create_execution(make_configuration(description="dies early"))
    """
)


@pytest.mark.slow
def test_process_that_died_before_initializing_is_aborted(tmp_path: Path) -> None:
    home = tmp_path / "home"
    script = tmp_path / "child.py"
    script.write_text(DIES_EARLY)
    proc = subprocess.run(
        [sys.executable, str(script), str(home)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DERIVA_ML_HOME": str(home)},
    )
    assert proc.returncode == -9, proc.stderr
    rid = proc.stdout.split()[1]
    ml = DerivaML("local", "test", home=home)
    try:
        # the row is born Initializing (create_execution's first step) and the lease is already written
        assert ml.lookup_execution(rid).status is Status.initializing
        aborted = ml.abort_stale_executions()  # no age needed: the lease names a process that is gone
        assert [r.rid for r in aborted] == [rid]
        assert aborted[0].history[-1].from_status is Status.initializing
        assert ml.lookup_execution(rid).status is Status.aborted
    finally:
        ml.close()


def _status_vocabulary_tables():
    """The newer reference layout: ``Execution.Status`` references an ``Execution_Status`` vocabulary."""
    import attrs

    from deriva_ml.catalog.schema import ML_TABLES, vocabulary_table
    from deriva_ml.core.schema_defs import ForeignKeyDef

    vocab = vocabulary_table(ML_SCHEMA, "Execution_Status", "Execution status", curie_prefix=ML_SCHEMA)
    out = [vocab]
    for t in ML_TABLES:
        if t.name == "Execution":
            t = attrs.evolve(
                t,
                foreign_keys=(*t.foreign_keys, ForeignKeyDef(("Status",), ML_SCHEMA, "Execution_Status", ("Name",))),
            )
        out.append(t)
    return out


@pytest.mark.parametrize("kind", ["embedded", "ermrest"])
def test_execution_status_vocabulary_layout(kind: str, tmp_path: Path) -> None:
    import contextlib

    from deriva_ml.catalog.schema import seed_batch
    from deriva_ml.core.status import STATUS_ORDER
    from deriva_ml.store.local import LocalObjectStore

    with contextlib.ExitStack() as stack:
        if kind == "embedded":
            from deriva_ml.catalog.sqlite import SQLiteCatalog

            cat = SQLiteCatalog(tmp_path / "ref.sqlite")
            cat.create_tables(_status_vocabulary_tables())
        else:
            import requests
            from ermrest_fake import FakeErmrest

            from deriva_ml.catalog.ermrest import ErmrestCatalog

            er = stack.enter_context(FakeErmrest())
            cid = requests.post(f"http://{er.host}/ermrest/catalog", timeout=10).json()["id"]
            cat = ErmrestCatalog(er.host, cid, scheme="http", credential={})
            cat.create_tables(_status_vocabulary_tables(), schemas=["ref"])
        cat.apply(seed_batch())
        terms = [{"Name": s.value, "Description": s.value} for s in STATUS_ORDER]
        cat.apply(Batch([Insert(ML_SCHEMA, "Execution_Status", terms)]))
        ml = DerivaML(
            "ref.example.org",
            "1",
            catalog=cat,
            store=LocalObjectStore(tmp_path / "o"),
            home=tmp_path,
            domain_schema="ref",
        )
        stack.callback(ml.close)
        with ml.create_execution(make_configuration(description="vocab layout")) as exe:
            stale = ml.restore_execution(exe.execution_rid)
            exe.update_status(Status.running, "working")
        assert _row_status(ml, exe.execution_rid) == "Completed"
        with pytest.raises(StatusConflict, match="'Completed'"):
            stale.update_status(Status.running, "progress from a stale handle")  # its Running is stale
        assert stale.status is Status.completed
        with pytest.raises(ValidationError):
            cat.apply(Batch([Insert(ML_SCHEMA, "Execution", [{"Status": "Bogus"}])]))
        rows = cat.query(ML_SCHEMA, "Execution_Status", columns=["Name"])
        assert {r["Name"] for r in rows} == {s.value for s in STATUS_ORDER}
