"""JEDI's answers about steps, turned into status changes, retry marks and history in one way for every path.

A submission (a new intent, or a crash repair that submits again or adopts the task DEFT already has) and our JEDI
``retry`` of a held step are answered by JEDI; each answer becomes a ``StepAnswer`` (checked against the step
lifecycle), and ``record`` writes a list of them: one transaction, or one answer at a time when another processor
moved a step meanwhile (possible only once a lease expired), leaving that step as the other one wrote it.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from pandajedi_wf.taskbuffer import steps, transitions
from pandajedi_wf.taskbuffer.connection import WfDatabase
from pandajedi_wf.taskbuffer.transitions import TransitionRecord
from pandajedi_wf.workflow import STEP_LIFECYCLE

from ..jedi_calls import SubmissionOutcome
from . import retries
from .step_row import StepRow


@dataclass(frozen=True)
class StepAnswer:
    """One step moves ``from_status`` -> ``to_status`` because of what JEDI answered."""

    workflow_id: int
    step: StepRow
    from_status: str
    to_status: str  # 'submitted' (JEDI has the task) or 'failed'
    reason: str  # the history's words
    jedi_task_id: int | None = None  # submitted: the task
    dialog: str | None = None  # failed: JEDI's answer, shown on the step
    mark: steps.RetryMark | None = None  # failed: the retry decision

    def __post_init__(self):
        STEP_LIFECYCLE.check(self.from_status, self.to_status)


def submission_answer(wf: dict, s: StepRow, outcome: SubmissionOutcome, now: datetime.datetime) -> StepAnswer | None:
    """The answer to record for a submission; None for a transient failure (the step stays ``submitting`` and the
    crash repair submits it again next pass). A refusal gets its retry decision here."""
    if outcome.transient:
        return None
    workflow_id = int(wf["workflow_id"])
    if outcome.accepted:
        return StepAnswer(workflow_id, s, "submitting", "submitted", outcome.message, jedi_task_id=outcome.jedi_task_id)
    mark, reason = retries.on_submission_refused(wf, s, outcome.message, outcome.refusal_code, now)
    return StepAnswer(workflow_id, s, "submitting", "failed", reason, dialog=outcome.message, mark=mark)


def retry_refused_answer(workflow_id: int, s: StepRow, message: str) -> StepAnswer:
    """JEDI refused our ``retry`` of a held step's task: the step ends ``failed`` at once with JEDI's answer (waiting
    would hold the workflow for a retry that will never run)."""
    return StepAnswer(workflow_id, s, "retrying", "failed", f"automatic retry not taken: {message}", dialog=message)


def record(db: WfDatabase, answers: list[StepAnswer], owner: str, now: datetime.datetime, stats) -> set[int]:
    """Write the answers and mirror them on the rows in memory. Returns the workflows with an answer that could not
    be written because the step had moved (their rows in memory no longer are the database's)."""
    if not answers:
        return set()
    try:
        with db.transaction():
            _write(db, answers, owner, now)
        for answer in answers:
            _mirror(answer)
        stats.add("step_transitions", len(answers))
        return set()
    except steps.StaleStepStatus:
        stats.add("batch_write_fallbacks")
    stale = set()
    for answer in answers:
        try:
            with db.transaction():
                _write(db, [answer], owner, now)
            _mirror(answer)
            stats.add("step_transitions")
        except steps.StaleStepStatus:
            stats.add("submissions_recorded_elsewhere")
            stale.add(answer.workflow_id)
    return stale


def _write(db: WfDatabase, answers: list[StepAnswer], owner: str, now: datetime.datetime) -> None:
    steps.record_submitted_many(db, [(int(a.step.step_id), a.jedi_task_id) for a in answers if a.to_status == "submitted"], now)
    steps.change_status(db, [steps.StatusChange(int(a.step.step_id), a.from_status, a.to_status, a.dialog)
                             for a in answers if a.to_status != "submitted"], now)
    steps.set_retry_marks(db, [a.mark for a in answers if a.mark is not None], now)
    transitions.record(db, [TransitionRecord("step", int(a.step.step_id), a.workflow_id, a.from_status, a.to_status, a.reason, owner, now)
                            for a in answers])


def _mirror(answer: StepAnswer) -> None:
    s = answer.step
    s.status, s.prev_status = answer.to_status, answer.from_status
    if answer.jedi_task_id is not None:
        s.jedi_task_id = answer.jedi_task_id
    if answer.dialog is not None:
        s.error_dialog = answer.dialog
