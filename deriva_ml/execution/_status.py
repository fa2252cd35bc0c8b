"""An execution's status changes: validated by ``transition()``, applied to the catalog as a compare-and-set,
then recorded in the manifest (record and lease in one transaction) and logged.

Functions of the :class:`~deriva_ml.execution._execution.Execution` they serve; the Execution keeps thin
methods (``update_status``, ``execution_start``/``execution_stop``, ``__exit__``) that call them.
"""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING

from deriva_ml.core.codec import dumps
from deriva_ml.core.errors import DerivaMLException, ExecutionError, StatusConflict
from deriva_ml.core.plans import plan_status_update
from deriva_ml.core.records import transition
from deriva_ml.core.redact import redact_text
from deriva_ml.core.status import Status
from deriva_ml.execution._lease import LEASE, lease_text

if TYPE_CHECKING:
    from deriva_ml.execution._execution import Execution

#: Statuses whose holder keeps the lease (a process that dies in one of them is found by abort_stale).
_LEASED = (Status.running, Status.initializing)
#: Statuses after which the run has recorded its end.
ENDED = (Status.completed, Status.failed, Status.aborted)


def set_status(exe: Execution, to: Status, detail: str) -> None:
    """Move ``exe`` to ``to``: catalog first (compare-and-set), then the record and lease (one commit)."""
    # the detail goes to Status_Detail (the catalog, the journal, sync) and the log: never a secret
    detail = redact_text(detail)
    new = transition(exe._record, to, detail, exe._services.ports.now())  # raises before any I/O
    if not exe.dry_run:
        # what the run registered and sealed so far is on disk before the catalog says it started or ended
        exe._manifest.make_durable()
        try:
            # a compare-and-set: applied only if the catalog still holds the status we started from
            exe._services.ports.catalog.apply(plan_status_update(new))
        except StatusConflict:
            refresh_from_catalog(exe)
            raise
    exe._record = new
    states = {"record": dumps(new, indent=None)}
    if to in _LEASED:
        states[LEASE] = lease_text()
    exe._manifest.set_states(states, intent=False)  # a copy of the catalog's status (and the lease)
    exe._log.info("status", status=to.value, detail=detail)


def refresh_from_catalog(exe: Execution) -> None:
    """After a lost race: take the status the catalog holds (another handle or process changed it)."""
    from deriva_ml.core.execution_rows import caught_up
    from deriva_ml.services.executions import lookup_execution

    row = lookup_execution(exe._services.ports, exe._services.schema, exe.execution_rid)
    exe._record = caught_up(exe._record, row)
    exe._manifest.set_states({"record": dumps(exe._record, indent=None)}, intent=False)
    exe._log.warning("status changed elsewhere", status=exe._record.status.value)


def end_run(exe: Execution, exc: BaseException | None) -> None:
    """What ``__exit__`` does: record the run's end unless it already did, never masking the user's error."""
    if exe.status in ENDED:
        # the run already recorded its own end (e.g. update_status(Status.completed) inside the block):
        # that status stands; __exit__ neither changes it nor raises
        if exc is not None:
            exe._log.warning("exception after the run had ended", status=exe.status.value, error=repr(exc))
        return
    try:
        exe.execution_stop(exc)
    except Exception as stop_error:
        if exc is None:
            if isinstance(stop_error, DerivaMLException):
                raise
            raise ExecutionError(
                f"execution {exe.execution_rid}: could not record its end "
                f"(working directory {str(exe.working_dir)!r}): {type(stop_error).__name__}: {stop_error}"
            ) from stop_error
        # the user's exception is what propagates (never masked by a full disk or a lost server)
        exe._log.error(
            "could not record the failure", error=describe(exc), cause=f"{type(stop_error).__name__}: {stop_error}"
        )
        exc.add_note(
            f"deriva_ml: execution {exe.execution_rid} could not be marked Failed: "
            + redact_text(f"{type(stop_error).__name__}: {stop_error}")
        )


def describe(exc: BaseException) -> str:
    """Status_Detail text for a failure (redacted: it goes to the catalog, the journal and sync)."""
    text = f"{type(exc).__name__}: {exc}"
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-3))
    return redact_text(text if len(text) > 2000 else f"{text}\n{tb}")[:4000]
