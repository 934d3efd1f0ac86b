"""The processor's pure parts: how the engine sees a step, plans checked against the lifecycle, JEDI's answers."""

from __future__ import annotations

import datetime

import pytest

from pandajedi_wf.core.lifecycle import IllegalTransition
from pandajedi_wf.daemons.jedi_calls import SubmissionOutcome
from pandajedi_wf.daemons.processor import outcomes
from pandajedi_wf.daemons.processor.plan import Plan
from pandajedi_wf.daemons.processor.step_row import StepRow, engine_status
from pandajedi_wf.workflow.lifecycles import STEP_LIFECYCLE

NOW = datetime.datetime(2030, 1, 1, 12, 0)
LATER = NOW + datetime.timedelta(minutes=10)
WF = {"workflow_id": 5, "status": "running", "retry_policy": None}


def step(status="running", **kw):
    kw.setdefault("node_key", "001")
    return StepRow(kw.pop("step_id", 11), 5, kw.pop("node_key"), 1, "top", kw.pop("step_type", "prun"), status, **kw)


@pytest.mark.parametrize("row, workflow_status, seen", [
    (step("submitted", jedi_task_id=7), "running", "submitting"),  # DEFT took it, JEDI_Tasks not yet: no child starts
    (step("submitted", jedi_task_id=7, jedi_status="defined"), "running", "submitted"),
    (step("failed", retry_after=LATER), "running", "retrying"),  # held for an automatic retry
    (step("failed", retry_after=LATER), "paused", "retrying"),  # a paused workflow keeps its held retries
    (step("failed", retry_after=LATER), "finishing", "failed"),  # ... a finishing one drops them
    (step("failed"), "running", "failed"),
    (step("done", step_type="junction", node_key="004i1/002", jedi_task_id=9), "running", "running"),  # loop waits for results
    (step("done", step_type="junction", node_key="004i1/002", jedi_task_id=9, results={"x": 1}), "running", "done"),
    (step("done", step_type="junction", node_key="002", jedi_task_id=9), "running", "done"),  # not in a loop body
    (step("done", step_type="junction", node_key="004/002", jedi_task_id=9), "running", "done"),  # sub-workflow, no loop
])
def test_the_engine_sees_one_status_per_step_decided_in_one_place(row, workflow_status, seen):
    assert engine_status(row, workflow_status) == seen


def test_every_change_a_plan_makes_is_checked_against_the_step_lifecycle():
    plan = Plan(dict(WF))
    s = step("defined")
    with pytest.raises(IllegalTransition):
        plan.move(s, "done", "no such way")
    assert s.status == "defined" and not plan.history and not plan.touched
    plan.move(s, "ready", "parents done")
    assert s.status == "ready" and plan.history == [("step", s, "defined", "ready", "parents done")]


def test_a_workflow_change_keeps_the_first_and_last_status():
    plan = Plan(dict(WF))
    plan.move_workflow("finishing", "user finish")
    plan.move_workflow("finished", "running steps ended")
    assert plan.workflow_change == ("running", "finished") and plan.wf["status"] == "finished"


def test_an_accepted_submission_is_answered_submitted_with_its_task():
    s = step("submitting")
    answer = outcomes.submission_answer(WF, s, SubmissionOutcome(True, 42, "ok jediTaskID=42"), NOW)
    assert (answer.from_status, answer.to_status, answer.jedi_task_id, answer.mark) == ("submitting", "submitted", 42, None)


def test_a_transient_failure_is_no_answer():
    assert outcomes.submission_answer(WF, step("submitting"), SubmissionOutcome(False, None, "busy", transient=True), NOW) is None


@pytest.mark.parametrize("made, retried", [(0, True), (4, True), (5, False)])
def test_a_refusal_is_judged_by_the_policy_against_the_step_s_count(made, retried):
    """JEDI's refusal code (none readable: transient, 5 retries by default) and the step's auto_retries decide; the
    words of the message do not."""
    s = step("submitting", auto_retries=made)
    answer = outcomes.submission_answer(WF, s, SubmissionOutcome(False, None, "whatever the words", refusal_code=None), NOW)
    assert (answer.to_status, answer.dialog) == ("failed", "whatever the words")
    assert (answer.mark.retry_after is not None) == retried and (s.retry_after is not None) == retried


def test_answers_are_checked_against_the_lifecycle():
    assert STEP_LIFECYCLE.can("retrying", "failed")
    with pytest.raises(IllegalTransition):
        outcomes.StepAnswer(5, step("done"), "done", "submitted", "cannot")
    answer = outcomes.retry_refused_answer(5, step("retrying"), "JEDI retry of task 7 refused: (2, 'no')")
    assert (answer.from_status, answer.to_status, answer.dialog) == ("retrying", "failed", "JEDI retry of task 7 refused: (2, 'no')")
