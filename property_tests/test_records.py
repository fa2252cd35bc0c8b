"""Properties of the core records: JSON round trips, frozenness, transitions."""

from __future__ import annotations

from datetime import timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deriva_ml.core.codec import dumps, from_jsonable, loads, to_jsonable
from deriva_ml.core.effects import Batch
from deriva_ml.core.errors import InvalidTransition
from deriva_ml.core.records import (
    AssetSpec,
    DatasetSpec,
    DatasetVersion,
    ExecutionConfiguration,
    ExecutionRecord,
    Term,
    Workflow,
    transition,
)
from deriva_ml.core.status import STATUS_ORDER, TERMINAL, TRANSITIONS
from property_tests import strategies as S

ROUND_TRIP = [
    (S.versions, DatasetVersion),
    (S.dataset_specs, DatasetSpec),
    (S.asset_specs, AssetSpec),
    (S.workflows, Workflow),
    (S.configurations, ExecutionConfiguration),
    (S.execution_records, ExecutionRecord),
    (S.terms, Term),
    (S.batches(), Batch),
]


@pytest.mark.parametrize(("strategy", "cls"), ROUND_TRIP, ids=[c.__name__ for _, c in ROUND_TRIP])
@given(data=st.data())
def test_json_round_trip_is_identity(strategy, cls, data):
    record = data.draw(strategy)
    again = loads(dumps(record), cls)
    if cls is Batch:
        assert to_jsonable(again) == to_jsonable(record)
    else:
        assert again == record


RECORDS = [S.versions, S.dataset_specs, S.asset_specs, S.workflows, S.configurations, S.execution_records, S.terms]


@pytest.mark.parametrize("strategy", RECORDS)
@given(data=st.data())
def test_frozen_records_reject_mutation(strategy, data):
    record = data.draw(strategy)
    field = attrs.fields(type(record))[0].name
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(record, field, getattr(record, field))


@given(
    start=S.execution_records,
    attempts=st.lists(st.tuples(S.statuses, S.deltas, S.texts), max_size=12),
    t0=S.aware_datetimes,
)
def test_any_sequence_of_attempts_follows_the_table(start, attempts, t0):
    record = attrs.evolve(start, history=())
    now = t0
    for target, delta, detail in attempts:
        now = now + delta
        before = record
        if target in TRANSITIONS[record.status]:
            record = transition(record, target, detail, now)
            assert record.status is target
            assert record.status_detail == detail
            assert record.history[-1].from_status is before.status
        else:
            with pytest.raises(InvalidTransition) as err:
                transition(record, target, detail, now)
            assert record == before  # unchanged
            assert err.value.current is before.status and err.value.target is target
        assert record.status in STATUS_ORDER
        if record.duration is not None:
            assert record.duration >= 0
        times = [h.at for h in record.history]
        assert times == sorted(times)


@given(record=S.execution_records, target=S.statuses, t=S.aware_datetimes)
def test_terminal_states_absorb(record, target, t):
    for terminal in TERMINAL:
        r = attrs.evolve(record, status=terminal, history=())
        with pytest.raises(InvalidTransition):
            transition(r, target, "x", t)


@given(record=S.execution_records, t=S.aware_datetimes, run=st.timedeltas(timedelta(0), timedelta(days=3)))
def test_duration_comes_from_recorded_times(record, t, run):
    r = attrs.evolve(record, status="Pending", history=(), start_time=None, stop_time=None)
    r = transition(r, "Running", "", t)
    r = transition(r, "Completed", "", t + run)
    assert r.duration == run.total_seconds()
    assert r.start_time == t and r.stop_time == t + run


@given(S.configurations)
def test_configuration_json_has_reference_keys(cfg):
    data = to_jsonable(cfg)
    assert list(data) == ["datasets", "assets", "workflow", "description", "argv", "config_choices"]
    for d in data["datasets"]:
        assert d["version"] is None or set(d["version"]) == {"major", "minor", "patch"}
    assert from_jsonable(data, ExecutionConfiguration) == cfg
