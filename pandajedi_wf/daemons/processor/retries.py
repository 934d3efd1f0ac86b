"""Automatic step retries inside the processor pass: decide when a step's task ends badly, act when the delay is over.

A step whose JEDI task ended ``failed``/``broken``/``exhausted``/``finished`` (or whose submission JEDI refused) is
classified (``control.classify_task_failure`` / ``classify_submission``) and judged by the workflow's retry policy
(``JEDI_WF_WORKFLOWS.retry_policy`` over the defaults) against the automatic retries already made for it
(``JEDI_WF_STEPS.auto_retries``, which a user command on the step sets back to 0). A step to retry keeps its ended
status in the database, with ``error_class`` and ``retry_after`` set; until then it is *held*: the engine sees it as
``retrying`` (``step_row.engine_status``), so children wait and the workflow does not end. Once ``retry_after`` has
passed, a task JEDI can retry (``failed``/``finished``) gets JEDI ``retry`` (step -> ``retrying``); any other becomes
a new task (step -> ``defined``, generation + 1, so a new task name); either way ``auto_retries`` grows by one.
A workflow that is finishing or cancelling drops held retries; a paused one keeps them until resumed.

Every decision is a history row whose reason says what was decided and why. Nothing here touches the database: the
processor writes what the plan collects.
"""

from __future__ import annotations

import datetime

from pandajedi_wf.control import CommandPolicy
from pandajedi_wf.control.retry_policy import (
    RetryPolicy,
    RetryPolicyError,
    classify_submission,
    classify_task_failure,
    decide_retry,
    parse_retry_policy,
)
from pandajedi_wf.core import jedi_statuses
from pandajedi_wf.taskbuffer.steps import RetryMark, StatusChange
from pandajedi_wf.workflow.lifecycles import STEP_ACTIVE

# JEDI statuses a step's task may end in that get a retry decision ('aborted' is someone's kill: never retried)
JEDI_FAILED = jedi_statuses.FAILED | jedi_statuses.FINISHED
# JEDI accepts 'retry' of a task in these statuses; other tasks are replaced by a new one
JEDI_RETRYABLE = CommandPolicy().jedi_retry_statuses
# workflow statuses in which a held step waits for its retry (paused: until resumed)
HOLDING_WORKFLOW = frozenset({"parsed", "running", "paused"})
_DROPPING = frozenset({"finishing", "cancelling"})
# the history reason of a retry the processor started by itself (what the 1.3.0 upgrade counted)
AUTOMATIC_RETRY_REASON = "automatic retry:"


def policy_of(wf: dict) -> tuple[RetryPolicy, str]:
    """The workflow's policy over the defaults, and a note when the stored one is unusable (defaults then apply)."""
    try:
        return parse_retry_policy(wf.get("retry_policy")), ""
    except RetryPolicyError as exc:
        return parse_retry_policy(None), f" (stored retry policy unusable, defaults used: {exc})"


def is_held(s) -> bool:
    """An ended step waiting for its automatic retry."""
    return s.retry_after is not None and s.status in ("failed", "finished")


def is_ending(s) -> bool:
    """The step's task has just ended in a status that gets a retry decision in this pass."""
    return s.status in STEP_ACTIVE and s.jedi_status in JEDI_FAILED and not s.retry_pending


def retry_not_taken(s, queued_command: str | None) -> bool:
    """A step ``retrying`` whose task still shows its ended status because JEDI has not picked up our ``retry`` yet:
    following it now would fail the step again for a retry that is about to run."""
    return s.status == "retrying" and s.jedi_status in jedi_statuses.ENDED and queued_command == "retry"


def on_task_ended(plan, s, target: str, now: datetime.datetime) -> str:
    """Decide about a step whose task ended ``s.jedi_status``; the step moves to ``target`` (failed/finished).
    Returns the history reason; the class, JEDI's errorDialog and the due time go into the plan's marks."""
    task_status, dialog = s.jedi_status, s.jedi_dialog
    found = classify_task_failure(task_status, dialog)
    policy, note = policy_of(plan.wf)
    decision = decide_retry(policy, found.error_class, s.auto_retries, now, key=s.node_key)
    _mark(plan, s, found.error_class, dialog, decision.after)
    what = f"JEDI task {s.jedi_task_id} is {task_status}"
    if target == "finished" and not decision.retry and found.error_class == "partial" and policy.max_attempts.get("partial", 0) == 0:
        return what  # a partial result is a result: nothing to say unless the policy retries partial tasks
    return f"{what}; {_verdict(found.error_class, found.reason, decision, note)}"


def on_submission_refused(wf: dict, s, message: str, code: int | bool | None, now: datetime.datetime) -> tuple[RetryMark, str]:
    """Decide about a step JEDI refused to take (``code``: insertTaskParamsPanda's, as the submission outcome
    carries it); returns the mark to write and the history reason."""
    found = classify_submission(code, message)
    policy, note = policy_of(wf)
    decision = decide_retry(policy, found.error_class, s.auto_retries, now, key=s.node_key)
    s.error_class, s.error_dialog, s.retry_after = found.error_class, message, decision.after
    mark = RetryMark(int(s.step_id), found.error_class, message, decision.after)
    return mark, f"{message}; {_verdict(found.error_class, found.reason, decision, note)}"


def handle_held(plan, s, by_key: dict, now: datetime.datetime) -> None:
    """A held step in this pass: drop the retry (workflow finishing/cancelling), start it (due), or keep waiting.

    A step submitted while its parent ran (noWaitParent) may fail because the parent did: it waits for the
    parent's retry, and becomes a new task if the parent does (its old task reads the parent's old task).
    """
    workflow_status = plan.wf["status"]
    if workflow_status in _DROPPING:
        plan.note(s, f"automatic retry dropped: workflow is {workflow_status}")
        _mark(plan, s, s.error_class, s.error_dialog, None)
        return
    parents = [by_key[k] for k in s.parent_keys if k in by_key]
    if workflow_status not in ("parsed", "running") or s.retry_after > now or any(is_held(p) for p in parents):
        return
    task_id, task_status = s.jedi_task_id, s.jedi_status
    error_class = s.error_class or "?"
    _mark(plan, s, s.error_class, s.error_dialog, None)
    s.auto_retries += 1
    plan.retries_started.append(s)
    parent_renewed = any(p.retry_reset or p.status in ("defined", "ready", "submitting") for p in parents)
    if task_id is not None and task_status in JEDI_RETRYABLE and not parent_renewed:
        plan.move(s, "retrying", f"{AUTOMATIC_RETRY_REASON} JEDI retry of task {task_id} ({error_class}, task {task_status})")
        plan.jedi_retries.append((int(task_id), s))
    else:
        if task_id is None:
            why = "JEDI never took the task"
        elif parent_renewed:
            why = "a parent step runs as a new task"
        else:
            why = f"task {task_id} is {task_status}, which JEDI cannot retry"
        s.jedi_task_id = s.jedi_status = s.results = None
        s.generation += 1
        s.retry_reset = True
        plan.move(s, "defined", f"{AUTOMATIC_RETRY_REASON} new JEDI task, generation {s.generation} ({error_class}; {why})")


def reset_changes(steps: list) -> list[StatusChange]:
    """The guarded resets of steps made new tasks in this plan (they are written first: later moves start from
    ``defined``)."""
    return [StatusChange(int(s.step_id), s.orig, "defined") for s in steps if s.retry_reset]


def base_status(s) -> str:
    """The status a step's guarded updates start from once this plan's reset (if any) is written."""
    return "defined" if s.retry_reset else s.orig


def _mark(plan, s, error_class: str | None, dialog: str | None, after: datetime.datetime | None) -> None:
    s.error_class, s.error_dialog, s.retry_after = error_class, dialog, after
    plan.marks[s.node_key] = RetryMark(int(s.step_id), error_class, dialog, after)


def _verdict(error_class: str, why: str, decision, note: str) -> str:
    if decision.retry:
        return f"{decision.reason}, due {decision.after:%Y-%m-%d %H:%M:%S} ({why}){note}"
    return f"not retried: {decision.reason} ({why}){note}"
