"""``ml.catalog_snapshot(snap)`` uses the model AS OF the snapshot: a table and a column added after it are absent
from the handle's model, table lists, ``find_*`` and queries, and present in the current handle's; opening a
snapshot handle costs one request on ERMrest (``GET /ermrest/catalog/N@SNAP/schema``) however many tables
the model has, none on the embedded catalog. Every backend (embedded, ERMrest fake, live)."""

from __future__ import annotations

from typing import Any

import pytest
from data_support import remote
from live_support import http_log

from deriva_ml.core.errors import DerivaMLException, UnknownColumn, UnknownTable
from deriva_ml.core.filters import col
from deriva_ml.core.schema_defs import ColumnDef


def _add_column(ml: Any, table: str, name: str, typename: str) -> None:
    """A column added to a table by another client (the port has no such operation; ERMrest's REST API does:
    ``POST /schema/S/table/T/column``). The embedded catalog has no way to add a column."""
    ml.catalog._request("POST", f"/schema/t/table/{table}/column", body={"name": name, "type": {"typename": typename}})
    ml.model(refresh=True)


def _open(ml: Any, snap: str) -> tuple[Any, int]:
    with http_log() as log:
        old = ml.catalog_snapshot(snap)
    return old, log.count(service="ermrest")


def test_snapshot_handle_has_the_model_of_its_snapshot(ml: Any) -> None:
    ml.insert("Subject", {"Name": "a", "Age": 1})
    snap = ml.catalog.snapshot()
    ml.create_table("Later", [ColumnDef("X", "text")])
    ml.create_asset("Scan")
    ml.insert("Later", {"X": "x"})
    if remote(ml):
        _add_column(ml, "Subject", "Weight", "float8")
        ml.insert("Subject", {"Name": "b", "Weight": 2.5})

    old, requests = _open(ml, snap)
    assert requests == (1 if remote(ml) else 0)  # GET /ermrest/catalog/N@SNAP/schema
    # the model, table lists, find_* at the snapshot: neither the table nor the column
    assert old.model().table("t", "Later") is None and old.model().table("t", "Scan") is None
    assert ml.model().table("t", "Later") is not None and ml.model().table("t", "Scan") is not None
    assert "Scan" not in old.list_asset_tables() and "Scan" in ml.list_asset_tables()
    assert old.find_assets() == []  # on ERMrest, reading Scan at the snapshot was a 409 before
    assert "Weight" not in old.model().table("t", "Subject").column_names
    # queries at the snapshot: the rows then, with the columns then
    assert [r["Name"] for r in old.get_table_as_dict("Subject")] == ["a"]
    assert all("Weight" not in r for r in old.get_table_as_dict("Subject"))
    with pytest.raises(UnknownTable, match="Later"):
        old.get_table_as_dict("Later")
    with pytest.raises(UnknownTable, match="Scan"):
        old.find_assets("Scan")
    with pytest.raises(UnknownColumn, match="Weight"):
        old.catalog.query("t", "Subject", {"Weight": 2.5})
    # the current handle sees both
    assert [r["X"] for r in ml.get_table_as_dict("Later")] == ["x"]
    if remote(ml):
        assert "Weight" in ml.model().table("t", "Subject").column_names
        assert old.query("Subject").where(col("Age") == 1).count() == 1
        with pytest.raises(UnknownColumn, match="Weight"):
            old.query("Subject").where(col("Weight") > 1).count()
        assert ml.query("Subject").where(col("Weight") > 1).count() == 1
    old.close()


def test_opening_a_snapshot_handle_is_one_request_whatever_the_model(ml: Any) -> None:
    first = ml.catalog.snapshot()
    for i in range(6):
        ml.create_table(f"More{i}", [ColumnDef("X", "text")])
    old, n_first = _open(ml, first)
    latest, n_latest = _open(ml, ml.catalog.snapshot())
    assert n_first == n_latest == (1 if remote(ml) else 0)
    assert latest.model().table("t", "More5") is not None and old.model().table("t", "More0") is None
    again = latest.catalog_snapshot(first)  # a snapshot handle opened from a snapshot handle
    assert again.model().table("t", "More0") is None and again.model().table("t", "Subject") is not None
    again.close()
    old.close()
    latest.close()


def test_an_unknown_snapshot_is_refused(ml: Any) -> None:
    with pytest.raises(DerivaMLException):
        ml.catalog_snapshot("not-a-snapshot!")
    if not remote(ml):
        # a snapshot after the latest one (ERMrest answers it with its latest model)
        with pytest.raises(DerivaMLException, match="not a snapshot of this catalog"):
            ml.catalog_snapshot(str(int(ml.catalog.snapshot()) + 5))


def test_embedded_file_without_model_history_refuses_older_snapshots(ml: Any) -> None:
    """A catalog file made before the model history was kept: the model at an earlier snapshot is not
    guessed (a clear error); snapshots from the upgrade on are readable."""
    if remote(ml):
        pytest.skip("the embedded catalog's file format")
    from deriva_ml.catalog.sqlite import SQLiteCatalog
    from deriva_ml.catalog.sqlite._snapshots import ModelHistoryUnknown

    ml.insert("Subject", {"Name": "a"})
    early = ml.catalog.snapshot()
    path = ml.catalog.path
    conn = ml.catalog.connection
    conn.execute("DROP TABLE _dml_model_log")  # as an older deriva-ml left it
    conn.execute("DELETE FROM _dml_meta WHERE key = 'model_log_from'")
    ml.insert("Subject", {"Name": "b"})
    upgraded = SQLiteCatalog(path, create=False)  # opening it starts the history at its current snapshot
    try:
        now = upgraded.snapshot()
        with pytest.raises(ModelHistoryUnknown, match=f"snapshot {early} is not recorded.*{now}"):
            upgraded.model_at(early)
        assert upgraded.model_at(now).table("t", "Subject") is not None
    finally:
        upgraded.close()
