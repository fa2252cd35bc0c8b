"""Properties of the one converter: every wire format reads back what it wrote, byte for byte on a second write."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from deriva_ml.cache.policy import CacheEntry, entry_from_json, entry_to_json
from deriva_ml.catalog.journal import JournalEntry, decode_entry, encode_entry
from deriva_ml.core.codec import from_jsonable
from deriva_ml.core.convert import json_text, structure, unstructure
from deriva_ml.core.effects import BatchResult, Insert
from deriva_ml.core.records import ExecutionRecord, StatusChange, Term
from deriva_ml.execution._sweep import JobOutcome
from property_tests import strategies as S


@st.composite
def journal_entries(draw: st.DrawFn) -> JournalEntry:
    batch = draw(S.batches())
    inserted = []
    rids: dict[str, str] = {}
    for effect in batch.effects:
        if isinstance(effect, Insert):
            rows = tuple({"RID": draw(S.rids)} for _ in effect.rows)
            rids.update({label: row["RID"] for label, row in zip(effect.labels, rows, strict=False) if label})
            inserted.append(rows)
        else:
            inserted.append(())
    return JournalEntry(seq=draw(st.integers(1, 10**9)), batch=batch, result=BatchResult(rids=rids, inserted=inserted))


@given(journal_entries())
def test_journal_lines_round_trip(entry):
    line = encode_entry(entry)
    assert "\n" not in line
    again = decode_entry(line)
    assert again.seq == entry.seq and dict(again.result.rids) == dict(entry.result.rids)
    assert encode_entry(again) == line


cache_entries = st.builds(
    CacheEntry,
    rid=S.rids,
    md5=st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
    filename=S.names,
    path=S.names,
    size=st.integers(0, 2**40),
    mtime_ns=st.integers(0, 2**62),
    last_used=st.floats(0, 2e9, allow_nan=False),
    created=st.floats(0, 2e9, allow_nan=False),
)


@given(cache_entries)
def test_cache_index_entries_round_trip(entry):
    assert entry_from_json(json.loads(json.dumps(entry_to_json(entry)))) == entry


job_outcomes = st.builds(JobOutcome, st.integers(0, 10_000), S.statuses, st.none() | S.rids, S.texts)


@given(job_outcomes)
def test_job_outcomes_round_trip(outcome):
    text = json_text(outcome, indent=2, ascii_only=True)
    assert from_jsonable(json.loads(text), JobOutcome) == outcome


@given(st.one_of(S.execution_records, S.terms))
def test_records_round_trip_through_generated_hooks(record):
    data = json.loads(json_text(record))
    assert structure(data, type(record)) == record
    assert unstructure(structure(data, type(record))) == data


@given(S.execution_records)
def test_history_is_structured_into_status_changes(record):
    again = structure(json.loads(json_text(record)), ExecutionRecord)
    assert all(isinstance(h, StatusChange) for h in again.history)


@given(st.dictionaries(S.names, S.scalars, max_size=6))
def test_plain_data_is_written_as_json_writes_it(data):
    assert json_text(data, sort_keys=True, ascii_only=True) == json.dumps(data, sort_keys=True, default=str)
    assert json_text(data) == json.dumps(data, ensure_ascii=False, default=str)


def test_term_without_optional_fields_reads_with_defaults():
    assert structure({"name": "x"}, Term) == Term(name="x")
