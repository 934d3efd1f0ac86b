"""JEDI calls for what a batch's committed plans decided: submissions of the recorded intents and our JEDI
``retry`` of held steps; their answers are recorded by ``outcomes``."""

from __future__ import annotations

from pandajedi_wf.taskbuffer.connection import WfDatabase

from ..jedi_calls import submit_task, task_command
from . import outcomes
from .faults import fault_point
from .plan import Plan
from .step_row import StepRow


def acting_user(wf: dict) -> str:
    """Who our JEDI calls for a workflow act as: its owner's DN (the name where none was recorded)."""
    return wf["user_dn"] or wf["user_name"]


def submit_step(wf: dict, s: StepRow, task_buffer, now, stats, errors: dict[int, str]) -> outcomes.StepAnswer | None:
    """Send a step's recorded intent to JEDI; the answer to record, or None when the way to JEDI failed (the step
    stays ``submitting``, the workflow's error says so, and it is sent again next pass)."""
    outcome = submit_task(task_buffer, s.task_params, acting_user(wf), params_text=s.task_params_text)
    stats.add("jedi_submissions")
    if outcome.accepted:
        fault_point("jedi_accepted")
    answer = outcomes.submission_answer(wf, s, outcome, now)
    if answer is None:
        errors[int(wf["workflow_id"])] = f"step {s.name}: {outcome.message} (will try again)"
    return answer


def send_retries(db: WfDatabase, plans: list[Plan], task_buffer, owner, now, stats) -> set[int]:
    """JEDI 'retry' for the automatic retries just committed (step ``retrying``); a refused one ends the step.
    Returns the workflows whose answer could not be written (a step moved meanwhile)."""
    answers = []
    for plan in plans:
        for task_id, s in plan.jedi_retries:
            comment = f"pandajedi_wf workflow {plan.workflow_id}: automatic retry of step {s.name} ({s.error_class})"
            refused = task_command(task_buffer, task_id, acting_user(plan.wf), "retry", comment)
            stats.add("jedi_retries")
            if refused:
                answers.append(outcomes.retry_refused_answer(plan.workflow_id, s, refused))
    return outcomes.record(db, answers, owner, now, stats)


def submit_intents(db: WfDatabase, plans: list[Plan], task_buffer, owner, now, stats, errors: dict[int, str], cap: int) -> set[int]:
    """Call JEDI for every committed intent and record the answers. Returns the workflows whose rows in memory may
    now differ from the database (a refusal's retry decision, a step another processor recorded)."""
    answers = []
    for plan in plans:
        for s in plan.submissions()[:cap]:
            if (answer := submit_step(plan.wf, s, task_buffer, now, stats, errors)) is not None:
                answers.append(answer)
    refused = {a.workflow_id for a in answers if a.to_status == "failed"}
    return refused | outcomes.record(db, answers, owner, now, stats)
