"""Status writes are compare-and-sets on every adapter (sqlite, ERMrest fake over HTTP, live ERMrest).

A plain write of ``Execution.Status`` is refused before the catalog changes; a :class:`SetStatus` applies
only where the row still holds the expected status, and a lost race names the status the catalog holds.
"""

from __future__ import annotations

import pytest

from deriva_ml.catalog.port import ML_SCHEMA, Catalog
from deriva_ml.core.effects import Batch, Insert, SetStatus, StatusWrite, Update
from deriva_ml.core.errors import InvalidTransition, RIDNotFound, StatusConflict, ValidationError


def _execution(catalog: Catalog, status: str | None = "Created") -> str:
    row = {} if status is None else {"Status": status}
    return catalog.apply(Batch([Insert(ML_SCHEMA, "Execution", [{"Description": "x", **row}], ["e"])])).rids["e"]


def _status(catalog: Catalog, rid: str) -> str:
    return catalog.query(ML_SCHEMA, "Execution", {"RID": rid}, columns=["Status"])[0]["Status"]


def test_plain_status_writes_are_refused(catalog: Catalog) -> None:
    rid = _execution(catalog)
    before = catalog.snapshot()
    for status in ("Running", "Completed", "Bogus"):
        with pytest.raises(ValidationError, match="transition"):
            catalog.apply(Batch([Update(ML_SCHEMA, "Execution", [{"RID": rid, "Status": status}])]))
        with pytest.raises(ValidationError, match="Created"):
            catalog.apply(Batch([Insert(ML_SCHEMA, "Execution", [{"Status": status}])]))
    assert catalog.snapshot() == before  # nothing reached the catalog
    assert _status(catalog, rid) == "Created"
    # other columns of an execution may still be updated plainly
    catalog.apply(Batch([Update(ML_SCHEMA, "Execution", [{"RID": rid, "Description": "y"}])]))
    # a status write is an edge of the transition table, checked when the effect is built
    with pytest.raises(InvalidTransition):
        StatusWrite(rid, "Created", "Running")
    with pytest.raises(ValidationError, match="Bogus"):
        StatusWrite(rid, "Created", "Bogus")


def test_compare_and_set_applies_and_loses(catalog: Catalog) -> None:
    rid = _execution(catalog)
    res = catalog.apply(Batch([SetStatus([StatusWrite(rid, "Created", "Initializing", "go", None)])]))
    assert [r["RID"] for r in res.inserted[0]] == [rid]
    assert _status(catalog, rid) == "Initializing"
    # a second writer that still believes Created loses, and is told what the catalog holds
    with pytest.raises(StatusConflict, match="'Initializing'") as info:
        catalog.apply(Batch([SetStatus([StatusWrite(rid, "Created", "Aborted", "late")])]))
    assert info.value.actual == "Initializing" and info.value.expected == "Created"
    assert _status(catalog, rid) == "Initializing"
    row = catalog.query(ML_SCHEMA, "Execution", {"RID": rid})[0]
    assert row["Status_Detail"] == "go"
    with pytest.raises(RIDNotFound):
        catalog.apply(Batch([SetStatus([StatusWrite("1-ZZZZ", "Created", "Aborted")])]))


def test_batched_compare_and_set_skips_lost_rows(catalog: Catalog) -> None:
    rids = [_execution(catalog) for _ in range(3)]
    catalog.apply(Batch([SetStatus([StatusWrite(rids[1], "Created", "Initializing")])]))
    writes = [StatusWrite(r, "Created", "Aborted", "stale", "0:00:00.000000") for r in rids]
    res = catalog.apply(Batch([SetStatus(writes, skip_lost=True)]))
    assert sorted(r["RID"] for r in res.inserted[0]) == sorted([rids[0], rids[2]])
    assert [_status(catalog, r) for r in rids] == ["Aborted", "Initializing", "Aborted"]
    row = catalog.query(ML_SCHEMA, "Execution", {"RID": rids[0]})[0]
    assert row["Duration"] == "0:00:00.000000" and row["Status_Detail"] == "stale"


def test_legacy_journal_status_updates_replay_as_compare_and_set(tmp_path) -> None:
    """A journal written before SetStatus existed holds plain Updates of Status: replay checks each edge
    against the status the target holds and applies it conditionally; an illegal one is refused."""
    import json

    from deriva_ml.catalog.journal import replay
    from deriva_ml.catalog.sqlite import open_local_catalog
    from deriva_ml.core.codec import effect_to_json

    def line(seq: int, effects: list, result: dict) -> str:  # type: ignore[type-arg]
        return json.dumps({"seq": seq, "batch": {"effects": [effect_to_json(e) for e in effects]}, "result": result})

    def status(rid: str, value: str) -> Update:
        return Update(ML_SCHEMA, "Execution", [{"RID": rid, "Status": value, "Status_Detail": value}])

    created = Insert(ML_SCHEMA, "Execution", [{"Status": "Created"}], ["e"])
    legal = [
        line(1, [created], {"rids": {"e": "1-0AAA"}, "inserted": [{"rids": ["1-0AAA"]}]}),
        line(2, [status("1-0AAA", "Initializing")], {"rids": {}, "inserted": [[]]}),
        line(3, [status("1-0AAA", "Pending")], {"rids": {}, "inserted": [[]]}),
    ]
    journal = tmp_path / "legacy.jsonl"
    journal.write_text("\n".join(legal) + "\n")
    target = open_local_catalog("t", tmp_path)
    rid_map = replay(journal, target)
    assert _status(target, rid_map["1-0AAA"]) == "Pending"
    illegal = tmp_path / "illegal.jsonl"
    illegal.write_text("\n".join([legal[0], line(2, [status("1-0AAA", "Completed")], {"rids": {}})]) + "\n")
    other = open_local_catalog("u", tmp_path)
    with pytest.raises(InvalidTransition):
        replay(illegal, other)
    assert [r["Status"] for r in other.query(ML_SCHEMA, "Execution", columns=["Status"])] == ["Created"]
    target.close()
    other.close()


def _second_connection(catalog: Catalog) -> Catalog:
    from deriva_ml.catalog.ermrest import ErmrestCatalog
    from deriva_ml.catalog.sqlite import SQLiteCatalog

    if isinstance(catalog, SQLiteCatalog):
        return SQLiteCatalog(catalog.path, create=False)
    assert isinstance(catalog, ErmrestCatalog)
    return ErmrestCatalog(catalog.hostname, catalog.catalog_id, scheme=catalog.scheme, credential=catalog._credential)


def test_two_connections_racing_have_exactly_one_winner(catalog: Catalog) -> None:
    """Two connections (threads released together) change the same execution from Created: one wins, the
    other gets StatusConflict naming the winner's status; the row holds the winner's write."""
    import threading

    other = _second_connection(catalog)
    try:
        for _ in range(5):
            rid = _execution(catalog)
            barrier = threading.Barrier(2)
            outcome: dict[str, str] = {}

            def go(
                name: str,
                cat: Catalog,
                to: str,
                rid: str = rid,
                barrier: threading.Barrier = barrier,
                outcome: dict[str, str] = outcome,
            ) -> None:
                barrier.wait()
                try:
                    cat.apply(Batch([SetStatus([StatusWrite(rid, "Created", to, name)])]))
                    outcome[name] = "won"
                except StatusConflict as e:
                    outcome[name] = f"lost {e.actual}"

            threads = [
                threading.Thread(target=go, args=("a", catalog, "Initializing")),
                threading.Thread(target=go, args=("b", other, "Aborted")),
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            winner = next(k for k, v in outcome.items() if v == "won")
            loser = "b" if winner == "a" else "a"
            won_status = "Initializing" if winner == "a" else "Aborted"
            assert outcome[loser] == f"lost {won_status}", outcome
            row = catalog.query(ML_SCHEMA, "Execution", {"RID": rid}, columns=["Status", "Status_Detail"])[0]
            assert row == {"Status": won_status, "Status_Detail": winner}
    finally:
        other.close()


def test_replay_is_a_compare_and_set_on_the_target(tmp_path) -> None:
    """A journalled status change replays only where the target still holds the status it started from."""
    from deriva_ml.catalog.journal import read_journal, replay_entry
    from deriva_ml.catalog.sqlite import open_local_catalog

    src = open_local_catalog("src", tmp_path, journal=True)
    rid = _execution(src)
    src.apply(Batch([SetStatus([StatusWrite(rid, "Created", "Initializing", "src")])]))
    target = open_local_catalog("dst", tmp_path)
    entries = list(read_journal(src))
    rid_map: dict = {}  # type: ignore[type-arg]
    replay_entry(entries[0], target, rid_map)
    new = rid_map[rid]
    target.apply(Batch([SetStatus([StatusWrite(new, "Created", "Aborted", "changed on the target")])]))
    with pytest.raises(StatusConflict, match="'Aborted'"):
        replay_entry(entries[1], target, rid_map)
    assert _status(target, new) == "Aborted"
    src.close()
    target.close()


def test_etag_if_match_like_the_real_server(catalog: Catalog) -> None:
    """ERMrest's optimistic concurrency on a data resource (the alternative to the conditional update): a GET
    returns an ETag; a write with ``If-Match`` of that ETag succeeds; once anything in the catalog changed,
    the same ``If-Match`` fails with 412 and changes nothing. The fake must behave like the server."""
    from deriva_ml.catalog.ermrest import ErmrestCatalog

    if not isinstance(catalog, ErmrestCatalog):
        pytest.skip("an ERMrest protocol property")
    rid = _execution(catalog)
    b = catalog._binding(None)
    path = f"/entity/deriva-ml:Execution/RID={rid}"
    got = b.get(path)
    etag = got.headers["ETag"]
    assert etag
    put = "/attributegroup/deriva-ml:Execution/RID;Description"
    r = b._session.put(b._server_uri + put, json=[{"RID": rid, "Description": "one"}], headers={"If-Match": etag})
    assert r.status_code == 200, r.text
    r = b._session.put(b._server_uri + put, json=[{"RID": rid, "Description": "two"}], headers={"If-Match": etag})
    assert r.status_code == 412, r.text  # the catalog changed since that ETag
    assert catalog.query(ML_SCHEMA, "Execution", {"RID": rid}, columns=["Description"]) == [{"Description": "one"}]
    fresh = b.get(path).headers["ETag"]
    assert fresh != etag
    r = b._session.put(b._server_uri + put, json=[{"RID": rid, "Description": "two"}], headers={"If-Match": fresh})
    assert r.status_code == 200, r.text
