"""Executing queued workflow commands inside the processor, under the workflow's lease.

The plan (what changes) comes from the pure ``control.plan_command``, made against the state the processor has just
read; it is written in one transaction with guarded updates, the command is closed in the same transaction, and only
then are JEDI task commands sent. A plan that went stale (a step moved meanwhile) leaves the command queued for the
next cycle. Killing is also kept going by the engine itself: a workflow in ``cancelling`` cancels its steps and the
processor kills their tasks, so a crash after the commit still ends with the tasks killed.
"""

from __future__ import annotations

import datetime

from pandajedi_wf.control import plan_command
from pandajedi_wf.taskbuffer import commands, steps, transitions, workflows
from pandajedi_wf.taskbuffer.jedi_tasks import with_jedi_status
from pandajedi_wf.taskbuffer.connection import WfDatabase
from pandajedi_wf.taskbuffer.transitions import TransitionRecord

from ..common import CycleStats
from ..jedi_calls import task_command
from .step_row import StepRow
from .submission import acting_user

PRODUCTION_ROLE = "production"
PRIVILEGED_ROLES = (PRODUCTION_ROLE, "operator")  # what JEDI lets a production role do, the operator may do too


def execute_queued(db: WfDatabase, wf: dict, step_rows: list[StepRow], queued: list[dict], task_buffer, now: datetime.datetime,
                   owner: str, stats: CycleStats) -> bool:
    """Run the workflow's queued commands in order; True if any changed the workflow (its steps are then re-read)."""
    changed = False
    with_jedi_status(db, step_rows)
    for command in queued:
        actor = f"{command['requester'] or '?'} via {owner}"
        plan = plan_command(
            command["command"], command["params"] or {}, wf["status"], step_rows,
            workflow_id=int(wf["workflow_id"]), production_role=command["requester_role"] in PRIVILEGED_ROLES,
        )
        if not plan.accepted:
            with db.transaction():
                commands.close(db, int(command["command_id"]), "refused", plan.refusal or "refused", now)
            stats.add("commands_refused")
            continue
        try:
            _apply(db, wf, step_rows, plan, command, actor, now)
        except steps.StaleStepStatus:
            stats.add("commands_stale")  # something moved under us; planned again next cycle
            return changed
        stats.add("commands_done")
        changed = True
        failures = _send_jedi_commands(task_buffer, wf, plan, command)
        if failures:
            workflows.set_error(db, int(wf["workflow_id"]), f"{command['command']}: " + "; ".join(failures), now)
    return changed


def _apply(db, wf, step_rows, plan, command, actor, now) -> None:
    workflow_id = int(wf["workflow_id"])
    by_key = {s.node_key: s for s in step_rows}
    history: list[TransitionRecord] = []
    reason = f"user command {command['command']} (#{command['command_id']})"
    with db.transaction():
        if plan.workflow_status and plan.workflow_status != wf["status"]:
            if not workflows.change_status(db, workflow_id, wf["status"], plan.workflow_status, now):
                raise steps.StaleStepStatus([steps.StatusChange(workflow_id, wf["status"], plan.workflow_status)])
            history.append(TransitionRecord("workflow", workflow_id, workflow_id, wf["status"], plan.workflow_status, reason, actor, now))
        for change in plan.step_changes:
            step_id = int(by_key[change.node_key].step_id)
            if change.new_task:
                steps.reset_for_new_task(db, step_id, change.from_status, change.to_status, now)
            else:
                steps.change_status(db, [steps.StatusChange(step_id, change.from_status, change.to_status)], now)
            history.append(TransitionRecord("step", step_id, workflow_id, change.from_status, change.to_status,
                                            f"{reason}: {change.reason}", actor, now))
        # a user's command on a step gives it its automatic retries again (the policy's budget starts anew)
        steps.forget_automatic_retries(db, [int(by_key[c.node_key].step_id) for c in plan.step_changes], now)
        dropped = [int(by_key[k].step_id) for k in plan.drop_keys if k in by_key]
        steps.delete(db, dropped)
        transitions.record(db, history)
        commands.close(db, int(command["command_id"]), "done", plan.message or "done", now)
    if plan.workflow_status:
        wf["status"] = plan.workflow_status


def _send_jedi_commands(task_buffer, wf, plan, command) -> list[str]:
    comment = f"pandajedi_wf workflow {wf['workflow_id']}: {command['command']} by {command['requester']}"
    return [f for jc in plan.jedi_commands if (f := task_command(task_buffer, jc.task_id, acting_user(wf), jc.command, comment))]


def kill_tasks(task_buffer, wf: dict, task_ids: list[int]) -> list[str]:
    comment = f"pandajedi_wf workflow {wf['workflow_id']} is cancelled"
    return [f for task_id in task_ids if (f := task_command(task_buffer, task_id, acting_user(wf), "kill", comment))]
