"""The rare paths of a claimed workflow, one workflow at a time with their own writes: crash repair of submission
intents, the user's commands (queued, or read from pbook's task commands), and kills that must be repeated."""

from __future__ import annotations

from pandajedi_wf.core import jedi_statuses
from pandajedi_wf.taskbuffer import jedi_tasks, steps

from ..jedi_calls import SubmissionOutcome, deft_user_name
from . import outcomes, user_intents
from .commands import execute_queued, kill_tasks
from .reading import load_rows, read_jedi
from .step_row import StepRow
from .submission import acting_user, submit_step


def run(db, wf: dict, step_rows: dict[int, list[StepRow]], task_buffer, now, owner, stats, cap: int,
        errors: dict[int, str]) -> tuple[bool, int]:
    """Returns (whether anything changed, how many intents the crash repair finished). At most ``cap`` intents are
    repaired per pass (each costs a DEFT lookup and maybe a JEDI call); the others stay ``submitting`` for the next."""
    workflow_id = int(wf["workflow_id"])
    changed = False
    stranded = [s for s in step_rows[workflow_id] if s.status == "submitting"][:cap]
    if stranded:
        repair_intents(db, wf, stranded, task_buffer, now, owner, stats, errors)
        stats.add("intents_repaired", len(stranded))
        changed = True
    user_intents.queue_for_claimed(db, wf, step_rows[workflow_id], now, stats)  # pbook kill/finish/retry of its tasks
    if wf.get("queued_commands") and execute_queued(db, wf, step_rows[workflow_id], wf["queued_commands"], task_buffer, now, owner, stats):
        changed = True
        step_rows[workflow_id] = load_rows(db, [workflow_id])[workflow_id]
        read_jedi(db, {workflow_id: wf["status"]}, {workflow_id: step_rows[workflow_id]})
    if wf["status"] == "cancelling":
        alive = [int(s.jedi_task_id) for s in step_rows[workflow_id]
                 if s.status == "cancelled" and s.jedi_task_id and s.jedi_status not in jedi_statuses.ENDED]
        if alive:
            stats.add("kills_repeated", len(alive))
            kill_tasks(task_buffer, wf, alive)
    return changed, len(stranded)


def repair_intents(db, wf: dict, stranded: list[StepRow], task_buffer, now, owner, stats, errors: dict[int, str]) -> None:
    """Steps left ``submitting`` by a crash: adopt the task DEFT already holds under the step's task name, or submit
    again (``uniqueTaskName`` makes JEDI answer with the existing task if it has one after all); the answers are
    recorded as those of a first submission."""
    params = steps.task_params_of(db, [int(s.step_id) for s in stranded])
    user = deft_user_name(acting_user(wf))  # DEFT holds the name upstream wrote, not our user_name
    answers = []
    for s in stranded:
        s.task_params = params.get(int(s.step_id))
        task_id = jedi_tasks.find_submitted_task(db, wf["vo"], wf["prod_source_label"] or "user", user, s.task_name)
        if task_id is not None:
            adopted = SubmissionOutcome(True, task_id, f"adopted JEDI task {task_id} found in DEFT after an interrupted submission")
            answer = outcomes.submission_answer(wf, s, adopted, now)
        else:
            answer = submit_step(wf, s, task_buffer, now, stats, errors)
        if answer is not None:
            answers.append(answer)
    outcomes.record(db, answers, owner, now, stats)
