"""Real executions on an embedded catalog against a small, hand-written model of the lifecycle.

The model is written from the spec (``shared/spec/executions-and-workflows.md``, "Execution Status
Lifecycle") and the prose of ``docs/status.md`` — NOT from ``deriva_ml.core.status.TRANSITIONS``:

- the happy path is created -> initializing -> pending -> running -> completed, one step at a time;
- progress messages repeat initializing or running;
- any state before the end may fail (created, initializing, pending, running -> failed);
- a failed run may be retried (failed -> pending);
- a run that died or was given up is aborted, from any state that has not ended (failed included);
- completed and aborted are final.

The machine drives several handles per execution (``restore_execution``), retries, ``abort_stale``
(by age, and by a dead lease after a simulated crash) and checks after every step that the catalog row,
every handle and the stored sequence of status writes (the catalog's own journal) agree with the model.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import warnings
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from deriva_ml import DerivaML
from deriva_ml.catalog.journal import read_journal, replay
from deriva_ml.catalog.port import ML_SCHEMA
from deriva_ml.catalog.sqlite import SQLiteCatalog
from deriva_ml.core.effects import Insert, SetStatus
from deriva_ml.core.errors import InvalidTransition, StatusConflict
from deriva_ml.testing import make_configuration, new_embedded_catalog

ORDER = ["Created", "Initializing", "Pending", "Running", "Completed"]
FINAL = {"Completed", "Aborted"}
ALL = [*ORDER, "Failed", "Aborted"]


def model_allows(frm: str, to: str) -> bool:
    """The lifecycle as the spec describes it (see the module docstring)."""
    if frm in FINAL:
        return False
    if to == "Aborted":
        return True
    if to == "Failed":
        return frm in ("Created", "Initializing", "Pending", "Running")
    if frm == "Failed":
        return to == "Pending"
    if to == frm:
        return frm in ("Initializing", "Running")
    return frm in ORDER and to in ORDER and ORDER.index(to) == ORDER.index(frm) + 1


def _dead_owner() -> dict[str, object]:
    import socket

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return {"host": socket.gethostname(), "pid": p.pid, "started": "gone"}


def test_the_table_is_the_model() -> None:
    """Every pair of statuses: the implementation's table allows exactly what the hand-written model allows."""
    from deriva_ml.core.status import STATUS_ORDER, TRANSITIONS

    for frm in STATUS_ORDER:
        for to in STATUS_ORDER:
            assert (to in TRANSITIONS[frm]) == model_allows(frm.value, to.value), (frm.value, to.value)


class Lifecycle(RuleBasedStateMachine):
    handles = Bundle("handles")

    def __init__(self) -> None:
        super().__init__()
        warnings.simplefilter("ignore")
        self.dir = tempfile.TemporaryDirectory()
        self.home = Path(self.dir.name)
        new_embedded_catalog(self.home, "model")  # a copy of the once-built deriva-ml catalog
        self.ml = DerivaML("local", "model", home=self.home)
        self.status: dict[str, str] = {}  # the model: rid -> status
        self.dead_lease: set[str] = set()
        self.all_handles: list = []

    def teardown(self) -> None:
        try:
            self._check_replay()
        finally:
            self.ml.close()
            self.dir.cleanup()

    # ------------------------------------------------------------------------------------------ rules

    @rule(target=handles)
    def create(self):
        exe = self.ml.create_execution(make_configuration(description="model"))
        self.status[exe.execution_rid] = "Pending"
        self.all_handles.append(exe)
        return exe

    @rule(target=handles, h=handles)
    def restore(self, h):
        other = self.ml.restore_execution(h.execution_rid)
        assert other.status.value == self.status[h.execution_rid]
        self.all_handles.append(other)
        return other

    @rule(h=handles, to=st.sampled_from(ALL))
    def change(self, h, to: str) -> None:
        rid = h.execution_rid
        believed, held = h.status.value, self.status[rid]
        try:
            h.update_status(to, f"to {to}")
        except InvalidTransition:
            assert not model_allows(believed, to), (believed, to)
            assert h.status.value == believed
            return
        except StatusConflict as e:
            assert model_allows(believed, to) and believed != held, (believed, held, to)
            assert e.actual == held and h.status.value == held
            return
        assert model_allows(believed, to) and believed == held, (believed, held, to)
        self.status[rid] = to
        if to in ("Initializing", "Running"):
            self.dead_lease.discard(rid)

    @rule(h=handles)
    def run_with(self, h) -> None:
        """``with exe:`` — start (a Failed run is retried: Pending first) and, unless the run already ended,
        stop; the expected outcome is simulated step by step with the model."""
        rid = h.execution_rid
        mine, held = h.status.value, self.status[rid]
        steps = (["Pending"] if mine == "Failed" else []) + ["Running", "Completed"]
        expect: type[Exception] | None = None
        for to in steps:
            if not model_allows(mine, to):
                expect = InvalidTransition
                break
            if mine != held:
                expect, mine = StatusConflict, held
                break
            mine = held = to
        try:
            with h:
                pass
        except (InvalidTransition, StatusConflict) as e:
            assert expect is type(e), (expect, e)
        else:
            assert expect is None, expect
        assert h.status.value == mine
        self.status[rid] = held
        if held == "Completed" and expect is None:
            self.dead_lease.discard(rid)

    @rule(h=consumes(handles))
    def crash(self, h) -> None:
        """The handle's process dies: its lease names a process that is gone; the handle is dropped."""
        h._manifest.set_state("owner", json.dumps(_dead_owner()))
        self.dead_lease.add(h.execution_rid)
        self.all_handles.remove(h)

    @rule()
    def abort_dead(self) -> None:
        aborted = {r.rid for r in self.ml.abort_stale_executions()}
        expected = {
            rid for rid in self.dead_lease if self.status[rid] in ("Created", "Initializing", "Pending", "Running")
        }
        assert aborted == expected, (aborted, expected, self.status)
        for rid in aborted:
            self.status[rid] = "Aborted"

    @rule()
    def abort_by_age(self) -> None:
        aborted = {r.rid for r in self.ml.abort_stale_executions(older_than=timedelta(microseconds=-1))}
        live = {rid for rid, s in self.status.items() if s in ("Created", "Initializing", "Pending", "Running")}
        assert aborted == live
        for rid in aborted:
            self.status[rid] = "Aborted"

    # ------------------------------------------------------------------------------------- invariants

    def status_now(self, rid: str) -> str:
        return self.ml.catalog.query(ML_SCHEMA, "Execution", {"RID": rid}, columns=["Status"])[0]["Status"]

    @invariant()
    def catalog_agrees_with_model(self) -> None:
        for rid, status in self.status.items():
            assert self.status_now(rid) == status, (rid, status)

    @invariant()
    def handles_hold_legal_histories(self) -> None:
        """Each handle's history is a chain of legal transitions, broken only by observations of the catalog
        (``from_status=None``: a status another handle wrote); it ends in the handle's status."""
        for h in self.all_handles:
            hist = h.record.history
            assert hist and hist[-1].to_status is h.status
            for before, change in pairwise(hist):
                if change.from_status is not None:
                    assert change.from_status is before.to_status, (before, change)
                    assert model_allows(change.from_status.value, change.to_status.value), change
                assert change.at >= before.at

    @invariant()
    def stored_sequence_is_legal(self) -> None:
        """Every status ever written (the catalog's journal, written in the same transactions) follows the model."""
        stored: dict[str, str] = {}
        for entry in read_journal(self.ml.catalog):
            for effect, rows in zip(entry.batch.effects, entry.result.inserted, strict=False):
                if isinstance(effect, Insert) and (effect.schema, effect.table) == (ML_SCHEMA, "Execution"):
                    for row, written_row in zip(rows, effect.rows, strict=True):
                        status = written_row.get("Status") or "Created"
                        # a new row starts Created, or already took the model's first step Created -> Initializing
                        assert status in ("Created", "Initializing"), status
                        stored[row["RID"]] = status
                elif isinstance(effect, SetStatus):
                    written = {r["RID"] for r in rows}
                    for w in effect.writes:
                        if w.rid in written:
                            assert stored[w.rid] == w.expected.value, (w, stored[w.rid])
                            assert model_allows(w.expected.value, w.status.value), w
                            stored[w.rid] = w.status.value
        assert {rid: stored[rid] for rid in self.status} == self.status

    def _check_replay(self) -> None:
        """Replaying the journal into an empty catalog gives the same statuses (replay = direct application)."""
        target = SQLiteCatalog(self.home / "replayed.sqlite")
        try:
            from deriva_ml.catalog.sqlite import ensure_ml_schema

            ensure_ml_schema(target)
            rid_map = replay(self.ml.catalog, target)  # type: ignore[arg-type]
            for rid, status in self.status.items():
                row = target.query(ML_SCHEMA, "Execution", {"RID": rid_map.get(rid, rid)}, columns=["Status"])
                assert row[0]["Status"] == status
        finally:
            target.close()


Lifecycle.TestCase.settings = settings(max_examples=12, stateful_step_count=14, deadline=None)
TestLifecycle = Lifecycle.TestCase
