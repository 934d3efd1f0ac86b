"""JEDI calls for what a batch's committed plans decided: submissions of the recorded intents and our JEDI
``retry`` of held steps; their answers are recorded by ``outcomes``."""

from __future__ import annotations

from pandajedi_wf.taskbuffer.connection import WfDatabase

from ..jedi_calls import submit_task, task_command
from . import outcomes
from .faults import fault_point
from .plan import Plan


def send_retries(db: WfDatabase, plans: list[Plan], task_buffer, owner, now, stats) -> set[int]:
    """JEDI 'retry' for the automatic retries just committed (step ``retrying``); a refused one ends the step.
    Returns the workflows whose answer could not be written (a step moved meanwhile)."""
    answers = []
    for plan in plans:
        for task_id, s in plan.jedi_retries:
            comment = f"pandajedi_wf workflow {plan.workflow_id}: automatic retry of step {s.name} ({s.error_class})"
            refused = task_command(task_buffer, task_id, plan.wf["user_dn"] or plan.wf["user_name"], "retry", comment)
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
            outcome = submit_task(task_buffer, s.task_params, plan.wf["user_dn"] or plan.wf["user_name"])
            stats.add("jedi_submissions")
            if outcome.accepted:
                fault_point("jedi_accepted")
            answer = outcomes.submission_answer(plan.wf, s, outcome, now)
            if answer is None:
                errors[plan.workflow_id] = f"step {s.name}: {outcome.message} (will try again)"
            else:
                answers.append(answer)
    refused = {a.workflow_id for a in answers if a.to_status == "failed"}
    return refused | outcomes.record(db, answers, owner, now, stats)
