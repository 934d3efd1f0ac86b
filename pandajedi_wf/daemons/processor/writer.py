"""Writing a batch of plans: one transaction of grouped, guarded statements (or one per plan if that fails)."""

from __future__ import annotations

from pandajedi_wf.taskbuffer import steps, transitions, workflow_data, workflows
from pandajedi_wf.taskbuffer.connection import WfDatabase, json_text
from pandajedi_wf.taskbuffer.transitions import TransitionRecord
from pandajedi_wf.workflow.taskparams import output_containers

from ..common import log_failure
from . import retries
from .faults import fault_point
from .plan import Plan


def write(db: WfDatabase, plans: list[Plan], owner: str, now, stats, errors: dict[int, str], log=None) -> list[Plan]:
    """All plans in one transaction; if that fails (a row moved under us), each plan in its own. Returns the plans
    written; a plan that could not be written leaves its workflow's error and is decided again next pass."""
    if not plans:
        return []
    try:
        with db.transaction():
            _write_plans(db, plans, owner, now)
        return plans
    except Exception:  # any failure of the batch's statements: each plan alone tells which one
        stats.add("batch_write_fallbacks")
    written = []
    for plan in plans:
        plan.written_alone = True
        try:
            with db.transaction():
                _write_plans(db, [plan], owner, now)
            written.append(plan)
        except Exception as exc:  # recorded on the workflow, logged with its traceback; the others go on
            errors[plan.workflow_id] = f"changes not written, retried next cycle: {type(exc).__name__}: {exc}"
            log_failure(log, f"workflow {plan.workflow_id}: {errors[plan.workflow_id]}")
            for s in plan.created:
                s.step_id = None
    return written


def _write_plans(db: WfDatabase, plans: list[Plan], owner: str, now) -> None:
    created = [s for p in plans for s in p.created]
    for s, step_id in zip(created, db.next_ids(steps.SEQUENCE, len(created))):
        s.step_id = step_id
    steps.insert_many(db, created, now)
    touched = [s for p in plans for s in p.touched.values() if s.orig is not None]
    # automatic retries as new tasks first: the engine may already have moved them on from 'defined'
    steps.reset_for_retry_grouped(db, retries.reset_changes(touched), now)
    steps.count_automatic_retries(db, [int(s.step_id) for p in plans for s in p.retries_started], now)
    base = retries.base_status
    intents = []
    for s in touched:
        if s.status == "submitting":  # serialized once: the same text is recorded and sent to JEDI (submission)
            s.task_params_text = json_text(s.task_params)
            intents.append((int(s.step_id), base(s), s.task_name, s.task_params_text))
    moves = [steps.StatusChange(int(s.step_id), base(s), s.status) for s in touched if s.status not in ("submitting", base(s))]
    # the rows in memory stay what the database will hold (kept between passes, see step_cache)
    for s in created:
        s.attempt_nr = 1 if s.status == "submitting" else 0
    for s in touched:
        if s.status != base(s):
            s.prev_status = base(s)
            if s.status == "submitting":
                s.attempt_nr = int(s.attempt_nr or 0) + 1
    steps.change_status_grouped(db, moves, now)
    steps.record_submit_intents(db, intents, now)
    steps.set_results_many(db, [(int(s.step_id), r) for p in plans for s, r in p.results], now)
    steps.set_error_dialogs(db, [(int(s.step_id), text) for p in plans for s, text in p.dialogs], now)
    steps.set_retry_marks(db, [m for p in plans for m in p.marks.values()], now)
    # JEDI_WF_DATA: the containers each submitted step will write, and the outcome of the steps that ended
    submitted = [(p.workflow_id, s) for p in plans for s in p.submissions()]
    workflow_data.register_many(
        db,
        [(w, int(s.step_id), name, kind) for w, s in submitted for name, kind in output_containers(s.task_params)],
        now,
        {int(s.step_id) for _, s in submitted if s.attempt_nr == 1},  # (their first intent: attempt_nr set above)
    )
    workflow_data.follow_producers(db, [(int(s.workflow_id), int(s.step_id), s.status) for s in touched], now)
    lost = workflows.change_status_grouped(db, [(p.workflow_id, *p.workflow_change) for p in plans if p.workflow_change], now)
    if lost:
        raise RuntimeError(f"workflows {lost} changed status under the processor")
    transitions.record(
        db,
        [
            TransitionRecord(kind, p.workflow_id if kind == "workflow" else int(s.step_id), p.workflow_id, old, new, reason, owner, now)
            for p in plans
            for kind, s, old, new, reason in p.history
        ],
    )
    fault_point("write_transaction")
