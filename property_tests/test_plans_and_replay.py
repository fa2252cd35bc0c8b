"""Plans dict-in / effects-out checked against a real embedded catalog, RID encoding, and journal replay.

- ``plan_output_rows``: every asset type of every output reaches ``<Asset>_Asset_Type`` in the catalog, each
  output is linked once to the execution, and the same URL registered twice gives one row;
- ``encode_rid``/``decode_rid`` are inverse and reject non-canonical text;
- replaying a journal into an empty catalog gives what applying the batches directly gave.
"""

from __future__ import annotations

import itertools
import tempfile
import warnings
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from deriva_ml import DerivaML
from deriva_ml.catalog.journal import replay
from deriva_ml.catalog.port import ML_SCHEMA
from deriva_ml.catalog.sqlite import decode_rid, encode_rid, ensure_ml_schema, open_local_catalog
from deriva_ml.core.effects import Batch, Insert, SetStatus, StatusWrite, Update
from deriva_ml.core.errors import StatusConflict
from deriva_ml.core.plans import StoredOutput, plan_output_rows
from deriva_ml.core.status import STATUS_ORDER, TRANSITIONS
from deriva_ml.testing import add_domain_schema, new_embedded_catalog

TYPES = ["Weights", "Plot", "Log", "Table"]
_counter = itertools.count()
_ML: dict[str, DerivaML] = {}


def _catalog() -> DerivaML:
    """One embedded catalog for the module (examples use fresh URLs, so they never collide)."""
    if "ml" not in _ML:
        warnings.simplefilter("ignore")
        home = Path(tempfile.mkdtemp(prefix="dml-plans-"))
        ml = DerivaML("local", "plans", home=home)
        add_domain_schema(ml)
        for t in TYPES:
            ml.add_term("Asset_Type", t, f"{t} files")
        _ML["ml"] = ml
    return _ML["ml"]


outputs = st.lists(
    st.tuples(
        st.sampled_from(["Image", "Model"]),
        st.lists(st.sampled_from(TYPES), min_size=1, max_size=4, unique=True),
        st.integers(0, 3),  # name index: equal names in one table are the same object (same URL)
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=40, deadline=None)
@given(outputs)
def test_every_asset_type_reaches_the_catalog(spec: list[tuple[str, list[str], int]]) -> None:
    ml = _catalog()
    dom = ml.domain_schema
    run = next(_counter)
    execution = ml.catalog.apply(Batch([Insert(ML_SCHEMA, "Execution", [{"Status": "Created"}], ["e"])])).rids["e"]
    stored = [
        StoredOutput(
            key=i,
            schema=dom,
            table=table,
            url=f"/hatrac/{table}/{run:08x}{n:024x}.f{n}.bin",
            filename=f"f{n}.bin",
            length=n,
            md5=f"{run:08x}{n:024x}",
            asset_types=tuple(types),
        )
        for i, (table, types, n) in enumerate(spec)
    ]
    batch, ident = plan_output_rows(execution, stored, {})
    result = ml.catalog.apply(batch)
    rid_of = {k: result.rids.get(v, v) for k, v in ident.items()}
    for table in ("Image", "Model"):
        mine = [o for o in stored if o.table == table]
        if not mine:
            continue
        want_types = {(rid_of[o.key], t) for o in mine for t in o.asset_types}
        rows = ml.catalog.query(dom, f"{table}_Asset_Type", {table: sorted({r for r, _ in want_types})})
        assert {(r[table], r["Asset_Type"]) for r in rows} == want_types
        links = ml.catalog.query(dom, f"{table}_Execution", {"Execution": execution})
        assert sorted(r[table] for r in links) == sorted({rid_of[o.key] for o in mine})
        assets = ml.catalog.query(dom, table, {"URL": sorted({o.url for o in mine})})
        assert len(assets) == len({o.url for o in mine})  # one row per object


@given(st.integers(min_value=0, max_value=32**12))
def test_rid_encoding_round_trips(n: int) -> None:
    rid = encode_rid(n)
    assert decode_rid(rid) == n
    assert all(part and len(part) <= 4 for part in rid.split("-"))
    assert rid.split("-")[0] == rid.split("-")[0].lstrip("0") or rid == "0"


@given(st.text(alphabet="0123456789ABCDEFGHJKMNPQRSTVWXYZ-ilo", max_size=12))
def test_rid_decoding_rejects_non_canonical_text(text: str) -> None:
    n = decode_rid(text)
    assert n is None or encode_rid(n) == text


# ---------------------------------------------------------------------------------------------- replay

ops = st.lists(
    st.one_of(
        st.tuples(st.just("subject"), st.integers(0, 5)),
        st.tuples(st.just("rename"), st.integers(0, 5)),
        st.tuples(st.just("execution"), st.integers(0, 0)),
        st.tuples(st.just("status"), st.integers(0, 5), st.sampled_from(STATUS_ORDER), st.booleans()),
    ),
    max_size=14,
)


@settings(max_examples=30, deadline=None)
@given(ops)
def test_journal_replay_equals_direct_application(program: list[tuple]) -> None:  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory() as d:
        new_embedded_catalog(d, "src")  # copies of the once-built deriva-ml catalog
        new_embedded_catalog(d, "dst")
        plain = open_local_catalog("src", Path(d))
        plain.create_tables(_subject_table())  # before journalling, like the target's table
        plain.close()
        src = cat = open_local_catalog("src", Path(d), journal=True)
        dst = open_local_catalog("dst", Path(d))
        try:
            dst.create_tables(_subject_table())
            subjects: list[str] = []
            executions: dict[str, str] = {}
            for op in program:
                if op[0] == "subject":
                    r = cat.apply(Batch([Insert("dom", "Subject", [{"Name": f"s{len(subjects)}"}], ["s"])]))
                    subjects.append(r.rids["s"])
                elif op[0] == "rename" and subjects:
                    rid = subjects[op[1] % len(subjects)]
                    cat.apply(Batch([Update("dom", "Subject", [{"RID": rid, "Name": f"r{op[1]}-{rid}"}])]))
                elif op[0] == "execution":
                    r = cat.apply(Batch([Insert(ML_SCHEMA, "Execution", [{"Status": "Created"}], ["e"])]))
                    executions[r.rids["e"]] = "Created"
                elif op[0] == "status" and executions:
                    rid = sorted(executions)[op[1] % len(executions)]
                    frm = executions[rid] if op[3] else op[2]  # sometimes a stale expectation
                    targets = sorted(TRANSITIONS[frm], key=STATUS_ORDER.index)
                    if not targets:
                        continue
                    to = targets[op[1] % len(targets)]
                    try:
                        cat.apply(Batch([SetStatus([StatusWrite(rid, frm, to, "x")])]))
                        executions[rid] = to.value
                    except StatusConflict:
                        assert frm != executions[rid]
            rid_map = replay(src, dst)
            for table, schema in (("Subject", "dom"), ("Execution", ML_SCHEMA)):
                a = src.query(schema, table, order_by=["RID"])
                b = {r["RID"]: r for r in dst.query(schema, table)}
                cols = ["Name"] if table == "Subject" else ["Status", "Status_Detail", "Duration"]
                for row in a:
                    other = b[rid_map.get(row["RID"], row["RID"])]
                    assert {c: row[c] for c in cols} == {c: other[c] for c in cols}
            for rid, status in executions.items():
                assert dst.query(ML_SCHEMA, "Execution", {"RID": rid_map[rid]})[0]["Status"] == status
        finally:
            src.close()
            dst.close()


def _subject_table() -> list:  # type: ignore[type-arg]
    from deriva_ml.catalog.schema import plain_table
    from deriva_ml.core.schema_defs import ColumnDef

    return [plain_table("dom", "Subject", [ColumnDef("Name", "text")])]


def test_empty_catalog_schema_is_idempotent(tmp_path: Path) -> None:
    cat = open_local_catalog("x", tmp_path)
    ensure_ml_schema(cat)
    ensure_ml_schema(cat)
    cat.close()
