"""Execution status and the one table of allowed transitions.

The table is data (:data:`TRANSITIONS`); :func:`transition` is the only way a status changes. It is pure:
it returns an evolved :class:`~deriva_ml.core.records.ExecutionRecord` or raises
:class:`~deriva_ml.core.errors.InvalidTransition` before anything touches the world. ``docs/status.md``
is generated from this table (``python -m deriva_ml.core.status``) and a test keeps the two equal.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class Status(enum.StrEnum):
    """Execution status values as stored in the catalog's ``Execution.Status`` column."""

    created = "Created"
    initializing = "Initializing"
    pending = "Pending"
    running = "Running"
    completed = "Completed"
    failed = "Failed"
    aborted = "Aborted"

    # Upper-case aliases, so both ``Status.running`` (the spec) and ``Status.Running`` read well.
    Created = "Created"
    Initializing = "Initializing"
    Pending = "Pending"
    Running = "Running"
    Completed = "Completed"
    Failed = "Failed"
    Aborted = "Aborted"

    @classmethod
    def parse(cls, value: object) -> Status:
        """Accept a Status, its value (``"Running"``) or its name in any case (``"running"``)."""
        from deriva_ml.core.errors import ValidationError

        if isinstance(value, Status):
            return value
        if isinstance(value, str):
            for member in cls:
                if value == member.value or value.lower() == member.value.lower():
                    return member
        raise ValidationError(
            f"status={value!r} is not an execution status; valid: {', '.join(s.value for s in STATUS_ORDER)}"
        )


#: Statuses in lifecycle order (for display).
STATUS_ORDER: tuple[Status, ...] = (
    Status.created,
    Status.initializing,
    Status.pending,
    Status.running,
    Status.completed,
    Status.failed,
    Status.aborted,
)

#: Each allowed edge, with the reason it exists. This is the whole state machine.
EDGES: tuple[tuple[Status, Status, str], ...] = (
    (Status.created, Status.initializing, "inputs start downloading and metadata files are written"),
    (Status.created, Status.failed, "validation or setup failed before initialization began"),
    (Status.created, Status.aborted, "the run was abandoned before it initialized"),
    (Status.initializing, Status.initializing, "progress while downloading inputs"),
    (Status.initializing, Status.pending, "all inputs are local; waiting for the model to start"),
    (Status.initializing, Status.failed, "an input could not be downloaded or linked"),
    (Status.initializing, Status.aborted, "the process died while initializing"),
    (Status.pending, Status.running, "the context manager was entered / execution_start() was called"),
    (Status.pending, Status.failed, "the run failed before it started"),
    (Status.pending, Status.aborted, "the run was abandoned before it started"),
    (Status.running, Status.running, "progress messages (update_status) during the run"),
    (Status.running, Status.completed, "the model returned without an exception"),
    (Status.running, Status.failed, "the model raised; the exception is kept in Status_Detail"),
    (Status.running, Status.aborted, "the process died while running (detected as stale)"),
    (Status.failed, Status.pending, "a failed run may be retried: restore it and start again"),
    (Status.failed, Status.aborted, "a failed run is given up for good"),
)

#: Allowed targets from each status. Completed and Aborted are terminal (no outgoing edges).
TRANSITIONS: Mapping[Status, frozenset[Status]] = {s: frozenset(t for f, t, _ in EDGES if f == s) for s in STATUS_ORDER}

TERMINAL: frozenset[Status] = frozenset(s for s, targets in TRANSITIONS.items() if not targets)


def check_transition(current: Status, target: Status) -> None:
    """Raise :class:`InvalidTransition` unless ``current -> target`` is an edge of the table."""
    from deriva_ml.core.errors import InvalidTransition

    allowed = TRANSITIONS[current]
    if target not in allowed:
        raise InvalidTransition(current, target, sorted(allowed, key=STATUS_ORDER.index))


def render_markdown() -> str:
    """The transition table as Markdown (the source of ``docs/status.md``)."""
    lines = [
        "# Execution status transitions",
        "",
        "Generated from `deriva_ml/core/status.py` by `python -m deriva_ml.core.status`; a test keeps it in",
        "step with the code. Every status change goes through `transition()`, which raises",
        "`InvalidTransition` (naming from, to and the allowed targets) before any I/O.",
        "",
        "```",
        "created ──► initializing ──► pending ──► running ──► completed",
        "   │             │              │           │",
        "   └─────────────┴──────────────┴───────────┴──► failed ──► pending (retry)",
        "   any non-terminal ──► aborted (died or abandoned)",
        "```",
        "",
        "| from | to | why |",
        "|---|---|---|",
    ]
    lines += [f"| {f.value} | {t.value} | {why} |" for f, t, why in EDGES]
    lines += [
        "",
        "Terminal: " + ", ".join(s.value for s in STATUS_ORDER if s in TERMINAL) + ".",
        "",
        "A **Failed** run is not terminal: `ml.restore_execution(rid)` followed by `execution_start()` moves",
        "it to Pending and then Running, so a crashed or failed run can be retried under the same RID with",
        "its provenance kept. **Aborted** is for runs that died (found by `ml.abort_stale_executions()`) or",
        "were given up; it is terminal.",
        "",
        "## Guarantees: who may write a status",
        "",
        "- **Only `transition()` decides a status.** A change is planned as a `SetStatus` effect (one",
        "  compare-and-set per execution: RID, the status the transition started from, the new status, detail",
        "  and Duration) by `plan_status_update`, which accepts only records whose last history entry is that",
        "  change. A `StatusWrite` whose edge is not in the table above cannot even be built.",
        "- **Every adapter refuses a plain status write**, before anything reaches the catalog: an `Update` that",
        "  sets `Execution.Status`, or an `Insert` with a status other than `Created` or `Initializing` (the",
        "  always-legal first step: `create_execution` writes the row after it, saving a request), raises",
        "  `ValidationError`",
        "  (embedded SQLite, ERMrest, journal replay and `deriva-ml sync`, which applies entries through the",
        "  adapter). Other columns of an execution may still be updated plainly.",
        "- **The write is conditional on the catalog, not on memory.** Embedded: `UPDATE ... WHERE RID = ? AND",
        "  Status = expected` inside the batch's `BEGIN IMMEDIATE` transaction, the same transaction that",
        "  appends the journal line. ERMrest: `PUT /attributegroup/deriva-ml:Execution/RID,dml_expected:=Status;",
        "  Status,Status_Detail,Duration` (ERMrest's documented update with renaming): the server matches RID",
        "  *and* the stored Status and updates in one transaction, and leaves out of its response a row whose",
        "  status changed. (The ETag/`If-Match` alternative was not used: ERMrest's data ETag is the whole",
        "  catalog's snapshot time, so any unrelated write would fail the precondition; the conditional update",
        "  is as safe and needs no retry loop.) `abort_stale_executions()` aborts all stale executions with one",
        "  such request per 1,000 rows.",
        "- **A lost race** (another handle or process changed the status first) raises `StatusConflict`, which",
        "  names the execution, the change that was refused and the status the catalog holds now; nothing was",
        "  written. The handle's record is refreshed from the catalog: its status becomes the catalog's, and its",
        "  history gains an *observation* of that status (`from_status=None`, since the steps in between were",
        "  made elsewhere). A later call starts from that status, so it is either legal or refused again.",
        "  `abort_stale_executions()` leaves an execution that changed meanwhile alone (it is not reported).",
        "- **Values are constrained.** The embedded schema refuses any `Execution.Status` that is not one of the",
        "  statuses above (triggers, added to older catalog files when they are opened). On ERMrest the adapter",
        "  validates (the server does not); a catalog with the reference package's `Execution_Status`",
        "  vocabulary works the same way. Reading a row whose status is unknown raises `ValidationError` naming",
        "  the RID and the value; it never turns into `Created`. A row without a status reads as `Created`.",
        "- **Leases from creation.** An execution's lease (host, pid, process start time) is written when its row",
        "  is created, so an execution whose process died even before Initializing is found and aborted by",
        "  `abort_stale_executions()`.",
        "- **Times.** Entering Running records the start; Completed, Failed and Aborted record the stop (and",
        "  Duration). A retry (Failed -> Pending) clears both, and clears Duration in the catalog. Durations",
        "  written by the reference package (`0.0H 0.0min 0.1462sec`) are read as well as ours (`H:MM:SS.ffffff`).",
        "- **A run that ended itself stays ended.** `exe.update_status(Status.completed)` (or `failed`,",
        "  `aborted`) inside `with exe:` is kept: `__exit__` neither changes it nor raises. An exception after",
        "  that point is logged and propagates unchanged.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - docs generator
    print(render_markdown(), end="")
