"""history_from_rows: the one place a Dataset_Version row becomes a DatasetHistory (catalog and bag)."""

from __future__ import annotations

from deriva_ml.core.records import DatasetVersion
from deriva_ml.core.rid import RID
from deriva_ml.dataset._records import DatasetHistory, history_from_rows


def test_rows_become_history_in_version_order() -> None:
    rows = [
        {"RID": "1-V10", "Version": "0.10.0", "Description": None, "Execution": "1-EX", "Snapshot": "2TA"},
        {"RID": "1-V9", "Version": "0.9.0", "Description": "nine", "RCT": "2026-01-01T00:00:00+00:00"},
        {"RID": "1-V1", "Version": "0.1.0", "Minid": "minid:abc"},
    ]
    got = history_from_rows(RID("1-DS"), iter(rows))
    assert [str(h.dataset_version) for h in got] == ["0.1.0", "0.9.0", "0.10.0"]  # numeric, not text order
    assert got[0] == DatasetHistory(
        dataset_rid=RID("1-DS"), dataset_version=DatasetVersion(0, 1, 0), version_rid=RID("1-V1"), minid="minid:abc"
    )
    assert (got[1].description, got[1].timestamp) == ("nine", "2026-01-01T00:00:00+00:00")
    assert (got[2].description, got[2].execution_rid, got[2].snapshot) == ("", "1-EX", "2TA")


def test_no_rows_no_history() -> None:
    assert history_from_rows(RID("1-DS"), []) == []
