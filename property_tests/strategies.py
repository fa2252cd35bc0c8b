"""Hypothesis strategies for every deriva_ml record (shared by all property tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from deriva_ml.core.effects import Batch, Delete, Insert, Ref, SetStatus, StatusWrite, Update
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
from deriva_ml.core.status import STATUS_ORDER, TRANSITIONS

_B32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
group = st.text(alphabet=_B32, min_size=1, max_size=4)
rids = st.builds(lambda gs: "-".join(gs), st.lists(group, min_size=1, max_size=4))
snap_rids = st.builds(lambda r, s: f"{r}@{s}", rids, rids)
names = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FFF), min_size=1, max_size=30).filter(
    lambda s: s.strip() != ""
)
texts = st.text(max_size=60)
opt_texts = st.none() | texts
statuses = st.sampled_from(STATUS_ORDER)

versions = st.builds(DatasetVersion, st.integers(0, 10_000), st.integers(0, 10_000), st.integers(0, 10_000))
dataset_specs = st.builds(
    DatasetSpec, rid=rids, version=st.none() | versions, materialize=st.booleans(), description=texts
)
asset_specs = st.builds(AssetSpec, rid=rids, cache=st.booleans())
workflows = st.builds(
    Workflow,
    name=names,
    workflow_type=st.lists(names, min_size=1, max_size=3).map(tuple),
    description=opt_texts,
    url=opt_texts,
    checksum=opt_texts,
    version=opt_texts,
    rid=st.none() | rids,
    is_notebook=st.booleans(),
)
configurations = st.builds(
    ExecutionConfiguration,
    workflow=st.none() | workflows | rids,
    description=texts,
    datasets=st.lists(dataset_specs, max_size=3).map(tuple),
    assets=st.lists(asset_specs, max_size=3).map(tuple),
    argv=st.lists(texts, max_size=4).map(tuple),
    config_choices=st.dictionaries(names, names, max_size=4),
)
aware_datetimes = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
_bare_records = st.builds(
    ExecutionRecord,
    rid=rids,
    workflow_rid=st.none() | rids,
    description=texts,
    status=statuses,
    status_detail=texts,
)


@st.composite
def _lived_records(draw: st.DrawFn) -> ExecutionRecord:
    """A record after a random run of attempted changes: history, start and stop times are filled in."""
    record = draw(_bare_records)
    at = draw(aware_datetimes)
    for _ in range(draw(st.integers(0, 8))):
        at = at + draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=2)))
        try:
            record = transition(record, draw(statuses), draw(texts), at)
        except InvalidTransition:
            continue
    return record


#: Execution records, most with a history (and start/stop times) made by transition().
execution_records = _lived_records()
terms = st.builds(
    Term,
    name=names,
    description=texts,
    synonyms=st.lists(names, max_size=3).map(tuple),
    id=opt_texts,
    uri=opt_texts,
    rid=st.none() | rids,
)
deltas = st.timedeltas(min_value=timedelta(seconds=-5), max_value=timedelta(hours=3))

scalars = st.none() | st.booleans() | st.integers(-(2**31), 2**31) | texts
columns = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_", min_size=1, max_size=8).filter(lambda c: c != "RID")


@st.composite
def batches(draw: st.DrawFn) -> Batch:
    """Batches of inserts (some labelled), updates and deletes whose Refs name earlier labels."""
    effects: list[Insert | Update | Delete | SetStatus] = []
    labels: list[str] = []
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["insert", "update", "delete", "status"]))
        if kind == "status":
            frm = draw(statuses)
            targets = sorted(TRANSITIONS[frm], key=STATUS_ORDER.index)
            if targets:
                w = StatusWrite(draw(rids), frm, draw(st.sampled_from(targets)), draw(texts), draw(opt_texts))
                effects.append(SetStatus([w], skip_lost=draw(st.booleans())))
            continue
        value = st.sampled_from([Ref(label) for label in labels]) | scalars if labels else scalars
        if kind == "insert":
            n = draw(st.integers(1, 3))
            rows = [draw(st.dictionaries(columns, value, min_size=1, max_size=3)) for _ in range(n)]
            lab = [f"L{i}_{j}" if draw(st.booleans()) else None for j in range(n)]
            effects.append(Insert("s", f"T{i}", rows, labels=lab, on_conflict_skip=draw(st.booleans())))
            labels += [x for x in lab if x]
        elif kind == "update":
            rows = [{"RID": draw(rids), **draw(st.dictionaries(columns, value, min_size=1, max_size=2))}]
            effects.append(Update("s", f"T{i}", rows))
        else:
            effects.append(Delete("s", f"T{i}", "RID", draw(st.lists(rids, min_size=1, max_size=3))))
    return Batch(effects)
