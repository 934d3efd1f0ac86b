"""The workflow processor cycle: claim due workflows, follow their JEDI tasks, decide, write, submit.

Order inside one workflow, chosen for crash safety:
 1. JEDI task statuses are read in bulk for the whole claimed batch and mapped onto steps;
 2. steps left in ``submitting`` by a crash are reconciled with DEFT (adopt the task or submit again);
 3. the pure engine (``workflow.next_actions``) decides; its actions are written in one transaction, where a
    submission is only an *intent* (step ``submitting`` with its exact task parameters);
 4. after that commit JEDI is called, and the answer is recorded. A crash between 3 and 4 is repaired by 2.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from pandajedi_wf.core.clock import utcnow
from pandajedi_wf.taskbuffer import commands, jedi_tasks, steps, transitions, workflows
from pandajedi_wf.taskbuffer.connection import WfDatabase
from pandajedi_wf.taskbuffer.transitions import TransitionRecord
from pandajedi_wf.workflow import (
    STEP_LIFECYCLE,
    WORKFLOW_LIFECYCLE,
    CancelStep,
    CreateStep,
    MakeReady,
    RunContext,
    SetStepStatus,
    SetWorkflowStatus,
    Skip,
    StepRecord,
    SubmitStep,
    Workflow,
    jedi_status_to_step_status,
    next_actions,
)
from pandajedi_wf.workflow.engine import JEDI_TASK_ENDED
from pandajedi_wf.workflow.lifecycles import STEP_ACTIVE

from .common import CycleStats, process_id
from .jedi_submission import submit_task
from .workflow_commands import execute_queued, kill_tasks

ACTIVE_WORKFLOW_STATUSES = ("parsed", "running", "paused", "finishing", "cancelling")


@dataclass
class ProcessorSettings:
    batch_size: int = 500
    lease_seconds: int = 600
    recheck_seconds: int = 60
    max_submissions_per_workflow: int = 200


@dataclass
class _Changes:
    """Status changes of one workflow decided in this cycle, written together with their history rows."""

    workflow_id: int
    actor: str
    now: datetime.datetime
    history: list[TransitionRecord] = field(default_factory=list)

    def step(self, step_id: int, old: str, new: str, reason: str) -> None:
        self.history.append(TransitionRecord("step", step_id, self.workflow_id, old, new, reason, self.actor, self.now))

    def workflow(self, old: str, new: str, reason: str) -> None:
        self.history.append(TransitionRecord("workflow", self.workflow_id, self.workflow_id, old, new, reason, self.actor, self.now))


def cycle(
    db: WfDatabase,
    stats: CycleStats,
    task_buffer,
    now: datetime.datetime | None = None,
    owner: str | None = None,
    settings: ProcessorSettings | None = None,
    junction_results=None,
) -> str:
    """One pass over every due workflow; returns a one-line summary for the heartbeat."""
    settings = settings or ProcessorSettings()
    now = now or utcnow()
    owner = owner or process_id()
    stats.add("workflows_woken", workflows.wake_on_task_changes(db, now))
    claimed = workflows.claim_due(db, ACTIVE_WORKFLOW_STATUSES, owner, now, settings.lease_seconds, settings.batch_size)
    stats.add("workflows_claimed", len(claimed))
    if not claimed:
        return "no workflow due"
    rows = workflows.load(db, claimed)
    for workflow_id, queued in commands.queued_for(db, claimed).items():
        rows[workflow_id]["queued_commands"] = queued
    step_rows = steps.load_for_workflows(db, claimed)
    task_ids = [
        s["jedi_task_id"]
        for workflow_id, wf_steps in step_rows.items()
        for s in wf_steps
        if s["jedi_task_id"] and (s["status"] in STEP_ACTIVE or rows[workflow_id]["status"] == "cancelling")
    ]
    jedi_status = jedi_tasks.task_statuses(db, task_ids)
    steps.touch_followed(db, claimed, now)
    failures = 0
    moved: list[int] = []
    for workflow_id in claimed:
        try:
            if _advance(db, rows[workflow_id], step_rows[workflow_id], jedi_status, task_buffer, now, owner, stats, settings, junction_results):
                moved.append(workflow_id)
        except Exception as exc:  # one bad workflow must not stop the others: record it where the user looks
            failures += 1
            stats.add("workflow_errors")
            try:
                workflows.set_error(db, workflow_id, f"processor error at {now:%Y-%m-%d %H:%M:%S}: {type(exc).__name__}: {exc}", now)
            except Exception:
                db.reconnect(attempts=1)
    # a workflow that moved may move again at once (a chain advances one cycle per link); the others back off
    workflows.release(db, moved, owner, now)
    workflows.release(db, [w for w in claimed if w not in set(moved)], owner, now + datetime.timedelta(seconds=settings.recheck_seconds))
    return f"advanced {len(claimed) - failures} workflows, {failures} with errors"


def _advance(db, wf: dict, step_rows: list[dict], jedi_status: dict[int, str], task_buffer, now, owner, stats, settings, junction_results) -> bool:
    """Advance one workflow; True if any of its steps or its own status changed."""
    workflow_id = int(wf["workflow_id"])
    changes = _Changes(workflow_id, owner, now)
    by_key = {s["node_key"]: s for s in step_rows}

    # 1. follow JEDI
    with db.transaction():
        for s in step_rows:
            task_status = jedi_status.get(int(s["jedi_task_id"])) if s["jedi_task_id"] else None
            s["jedi_status"] = task_status
            if task_status is None or s["status"] not in STEP_ACTIVE:
                continue
            target = jedi_status_to_step_status.get(task_status)
            if target and target != s["status"] and STEP_LIFECYCLE.can(s["status"], target):
                reason = f"JEDI task {s['jedi_task_id']} is {task_status}"
                steps.change_status(db, [steps.StatusChange(s["step_id"], s["status"], target)], now)
                changes.step(s["step_id"], s["status"], target, reason)
                s["status"] = target
                stats.add("step_transitions")
            s["jedi_status"] = task_status
            if target in ("done", "finished") and s["step_type"] == "junction" and s["results"] is None and junction_results is not None:
                s["results"] = junction_results.fetch(int(s["jedi_task_id"]), s["task_name"])
                steps.set_outputs(db, s["step_id"], s["outputs"], s["results"], now)
        transitions.record(db, changes.history)
    followed_changes = bool(changes.history)
    changes.history.clear()

    # 2. reconcile submissions interrupted by a crash or a transient JEDI failure
    stranded = [s for s in step_rows if s["status"] == "submitting"]
    for s in stranded:
        _finish_submission(db, wf, s, task_buffer, now, owner, stats, reconcile=True)

    # 2b. user commands (kill, retry, pause, ...), in the order they were given
    if wf.get("queued_commands") and execute_queued(db, wf, step_rows, wf["queued_commands"], task_buffer, now, owner, stats):
        followed_changes = True
        step_rows = steps.load_for_workflows(db, [workflow_id])[workflow_id]
        by_key = {s["node_key"]: s for s in step_rows}

    # 2c. a cancelled workflow's tasks that JEDI has not ended yet (e.g. not yet known to JEDI when first killed)
    if wf["status"] == "cancelling":
        alive = [int(s["jedi_task_id"]) for s in step_rows if s["status"] == "cancelled" and s["jedi_task_id"] and s.get("jedi_status") not in JEDI_TASK_ENDED]
        if alive:
            stats.add("kills_repeated", len(alive))
            kill_tasks(task_buffer, wf, alive)

    # 3. decide
    definition = Workflow.from_dict(wf["definition"])
    records = {
        key: StepRecord(
            node_key=key,
            node_id=int(s["node_id"]) if s["node_id"] is not None else 0,
            status=_engine_status(s),
            iteration=int(s["iteration"] or 0),
            scatter_index=s["scatter_index"],
            task_id=s["jedi_task_id"],
            jedi_status=s.get("jedi_status"),
            outputs=s["outputs"] or [],
            results=s["results"],
            generation=int(s.get("generation") or 0),
        )
        for key, s in by_key.items()
    }
    request = wf["request"] or {}
    context = RunContext(
        out_ds=wf["out_ds"],
        user_name=wf["user_name"],
        vo=wf["vo"],
        workflow_id=workflow_id,
        workflow_status=wf["status"],
        task_templates=request.get("taskParams"),
        prod_source_label=wf["prod_source_label"] or "user",
    )
    actions = next_actions(definition, records, context)
    if not actions:
        return followed_changes or bool(stranded)
    to_submit = _apply(db, wf, by_key, actions, changes, now, stats, settings)
    if wf.get("tasks_to_kill"):  # cancelled steps whose JEDI tasks still live: kill them now the cancel is committed
        failures = kill_tasks(task_buffer, wf, wf.pop("tasks_to_kill"))
        if failures:
            workflows.set_error(db, workflow_id, "; ".join(failures), now)

    # 4. submit, after the intents are committed
    for s in to_submit:
        _finish_submission(db, wf, s, task_buffer, now, owner, stats, reconcile=False)
    return True


def _engine_status(s: dict) -> str:
    """The status the engine decides on. A task DEFT accepted but TaskRefiner has not yet put in JEDI_Tasks cannot
    be named as ``parentTaskName`` (insertTaskParamsPanda looks the parent up there and refuses the child), so
    until then its step counts as still ``submitting`` and no child starts early on it."""
    if s["status"] == "submitted" and s.get("jedi_status") is None:
        return "submitting"
    return s["status"]


def _apply(db, wf, by_key, actions, changes: _Changes, now, stats, settings) -> list[dict]:
    """Write the engine's decisions in one transaction; return the steps whose submission intent was recorded."""
    workflow_id = int(wf["workflow_id"])
    submitted: list[dict] = []
    with db.transaction():
        created = [a for a in actions if isinstance(a, CreateStep)]
        if created:
            steps.insert(
                db,
                workflow_id,
                [
                    steps.NewStep(a.node_key, a.node_id, a.name, a.type, "defined", a.iteration, a.scatter_index, list(a.parents), a.task_name)
                    for a in created
                ],
                now,
            )
            ids = steps.ids_by_key(db, workflow_id, [a.node_key for a in created])
            for a in created:
                by_key[a.node_key] = {"step_id": ids[a.node_key], "node_key": a.node_key, "status": "defined", "name": a.name, "task_name": a.task_name}
                changes.step(ids[a.node_key], None, "defined", f"step {a.name} created")
            stats.add("steps_created", len(created))
        for action in actions:
            if isinstance(action, CreateStep):
                continue
            if isinstance(action, SetWorkflowStatus):
                old = wf["status"]
                if old == action.status:
                    continue
                WORKFLOW_LIFECYCLE.check(old, action.status)
                if workflows.change_status(db, workflow_id, old, action.status, now):
                    changes.workflow(old, action.status, action.reason)
                    wf["status"] = action.status
                    stats.add("workflow_transitions")
                continue
            s = by_key[action.node_key]
            if isinstance(action, SubmitStep):
                if len(submitted) >= settings.max_submissions_per_workflow:
                    continue  # the rest go next cycle; the engine proposes them again
                STEP_LIFECYCLE.check(s["status"], "submitting")
                steps.record_submit_intent(db, s["step_id"], action.task_name, action.task_params, now)
                changes.step(s["step_id"], s["status"], "submitting", f"submitting JEDI task {action.task_name}")
                s.update(status="submitting", task_name=action.task_name, task_params=action.task_params)
                submitted.append(s)
                stats.add("step_transitions")
                continue
            if isinstance(action, CancelStep) and s.get("jedi_task_id") and s["status"] in STEP_ACTIVE:
                wf.setdefault("tasks_to_kill", []).append(int(s["jedi_task_id"]))
            target = {MakeReady: "ready", Skip: "skipped", CancelStep: "cancelled"}.get(type(action))
            if isinstance(action, SetStepStatus):
                target = action.status
            if target is None or target == s["status"]:
                continue
            STEP_LIFECYCLE.check(s["status"], target)
            steps.change_status(db, [steps.StatusChange(s["step_id"], s["status"], target)], now)
            changes.step(s["step_id"], s["status"], target, action.reason)
            s["status"] = target
            stats.add("step_transitions")
        transitions.record(db, changes.history)
    changes.history.clear()
    return submitted


def _finish_submission(db, wf, s, task_buffer, now, owner, stats, reconcile: bool) -> None:
    """Call JEDI for a step whose intent is recorded (or adopt the task a previous attempt already created)."""
    workflow_id = int(wf["workflow_id"])
    task_id = None
    if reconcile:
        task_id = jedi_tasks.find_submitted_task(db, wf["vo"], wf["prod_source_label"] or "user", wf["user_name"], s["task_name"])
        message = f"adopted JEDI task {task_id} found in DEFT after an interrupted submission" if task_id else None
    if task_id is None:
        outcome = submit_task(task_buffer, s["task_params"], wf["user_dn"] or wf["user_name"])
        stats.add("jedi_submissions")
        if outcome.transient:
            workflows.set_error(db, workflow_id, f"step {s['name']}: {outcome.message} (will try again)", now)
            return
        if not outcome.accepted:
            with db.transaction():
                steps.change_status(db, [steps.StatusChange(s["step_id"], "submitting", "failed", outcome.message)], now)
                transitions.record(db, [TransitionRecord("step", s["step_id"], workflow_id, "submitting", "failed", outcome.message, owner, now)])
            s["status"] = "failed"
            stats.add("step_transitions")
            return
        task_id, message = outcome.jedi_task_id, outcome.message
    with db.transaction():
        steps.record_submitted(db, s["step_id"], task_id, now)
        transitions.record(db, [TransitionRecord("step", s["step_id"], workflow_id, "submitting", "submitted", message, owner, now)])
    s.update(status="submitted", jedi_task_id=task_id)
    stats.add("step_transitions")
