"""What a pass reads for a claimed batch, in bulk: the step rows (kept or loaded) and JEDI's view of their tasks."""

from __future__ import annotations

from pandajedi_wf.taskbuffer import jedi_tasks, steps
from pandajedi_wf.taskbuffer.connection import WfDatabase
from pandajedi_wf.workflow.lifecycles import STEP_ACTIVE

from .retries import is_held, retry_not_taken
from .step_row import StepRow


def load_rows(db: WfDatabase, workflow_ids: list[int]) -> dict[int, list[StepRow]]:
    """The light step rows of these workflows, as the processor holds them."""
    return steps.load_light(db, workflow_ids, StepRow)


def read_jedi(db: WfDatabase, workflow_status: dict[int, str], step_rows: dict[int, list[StepRow]],
              read_in_claim: dict[int, tuple[str, str | None]] | None = None) -> None:
    """JEDI's view of the batch: status and errorDialog of every task followed (active steps, steps of a cancelling
    workflow, steps held for a retry), and whether a retry we asked for is still waiting in PRODSYS_COMM.
    ``read_in_claim``: the states the claim read moments ago (``task_states``, to tell quiet workflows apart); those
    tasks are not read again (a change since has a later change time than the claim: it wakes the workflow again)."""
    followed = [
        s
        for workflow_id, rows in step_rows.items()
        for s in rows
        if s.jedi_task_id and (s.status in STEP_ACTIVE or workflow_status[workflow_id] == "cancelling" or is_held(s))
    ]
    ids = [int(s.jedi_task_id) for s in followed]
    known = read_in_claim or {}
    states = {t: known[t] for t in ids if t in known}
    missing = [t for t in ids if t not in states]
    if missing:
        states.update(jedi_tasks.task_states(db, missing))
    for rows in step_rows.values():
        for s in rows:
            s.jedi_status, s.jedi_dialog = states.get(int(s.jedi_task_id), (None, None)) if s.jedi_task_id else (None, None)
    asked = [s for s in followed if retry_not_taken(s, "retry")]
    if asked:
        queued = jedi_tasks.queued_task_commands(db, [int(s.jedi_task_id) for s in asked])
        for s in asked:
            s.retry_pending = retry_not_taken(s, queued.get(int(s.jedi_task_id)))
