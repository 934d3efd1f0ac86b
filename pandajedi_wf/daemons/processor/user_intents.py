"""Task commands users sent with ``pbook`` become workflow commands (``control.task_intents`` decides which).

Two ways in, both cheap:
 * a workflow the processor claimed (its task changed status, e.g. ``aborting`` after ``pbook kill``): the DEFT
   command rows of its commanded tasks are read and the intents queued and executed in the same pass, before the
   engine sees the killed steps;
 * a retried task under an ended step (``pbook retry``; the workflow may have ended and is then not claimed): one
   statement per pass finds such steps from DEFT's retry rows through the step index on ``jedi_task_id``.
Each intent is authorized like any command (owner or production role) and stored in JEDI_WF_COMMANDS, refused ones
with the reason, so the history shows what the user's task command did to the workflow.
"""

from __future__ import annotations

import datetime

from pandajedi_wf.control import authorize
from pandajedi_wf.control.task_intents import TASK_COMMAND_INTENT, Intent, intents, tasks_to_read
from pandajedi_wf.taskbuffer import commands, jedi_tasks, steps, workflows
from pandajedi_wf.taskbuffer.connection import WfDatabase

from ..common import CycleStats
from .step_row import StepRow

RETRY_COMMANDS = tuple(sorted(c for c, meant in TASK_COMMAND_INTENT.items() if meant == "retry"))


def queue_for_claimed(db: WfDatabase, wf: dict, step_rows: list[StepRow], now: datetime.datetime, stats: CycleStats) -> None:
    """Queue what the user meant by the task commands of a claimed workflow; accepted ones join
    ``wf['queued_commands']`` so the processor executes them in this pass."""
    wanted = tasks_to_read(wf["status"], [s for s in step_rows if s.jedi_status is not None])  # (the followed ones: the rest need no look)
    if not wanted:
        return
    found = intents(wf["status"], step_rows, jedi_tasks.task_commands(db, wanted),
                    [c["command"] for c in wf.get("queued_commands") or ()])
    if found:
        refused = commands.refused_origins(db, [int(wf["workflow_id"])]).get(int(wf["workflow_id"]), set())
        found = [i for i in found if i.key not in refused]
    for intent in found:
        queued = _queue(db, wf, intent, now, stats)
        if queued is not None:
            wf.setdefault("queued_commands", []).append(queued)


def queue_for_retried(db: WfDatabase, now: datetime.datetime, stats: CycleStats) -> int:
    """Workflows with a step that ended but whose task a user retried in JEDI: queue the workflow retry (which makes
    the workflow due, even an ended one). Returns how many were queued."""
    pairs = steps.ended_with_task_command(db, RETRY_COMMANDS)
    if not pairs:
        return 0
    workflow_ids = sorted({w for w, _ in pairs})
    rows = workflows.load(db, workflow_ids, skip_definition=set(workflow_ids))
    pending = commands.queued_for(db, workflow_ids)
    step_rows = steps.load_for_workflows(db, workflow_ids, light=True)
    task_ids = [int(s["jedi_task_id"]) for ss in step_rows.values() for s in ss if s["jedi_task_id"]]
    states = jedi_tasks.task_states(db, task_ids)
    task_commands = jedi_tasks.task_commands(db, [t for _, t in pairs])
    refused = commands.refused_origins(db, workflow_ids)
    queued = 0
    for workflow_id in workflow_ids:
        for s in step_rows[workflow_id]:
            s["jedi_status"] = states.get(int(s["jedi_task_id"]), (None, None))[0] if s["jedi_task_id"] else None
        wf = rows[workflow_id]
        for intent in intents(wf["status"], step_rows[workflow_id], task_commands, [c["command"] for c in pending.get(workflow_id, ())]):
            if intent.key in refused.get(workflow_id, ()):
                continue
            if _queue(db, wf, intent, now, stats) is not None:
                queued += 1
    return queued


def _queue(db: WfDatabase, wf: dict, intent: Intent, now: datetime.datetime, stats: CycleStats) -> dict | None:
    """Store the intent as a command of its requester; the queued command's row, or None when it was refused."""
    workflow_id = int(wf["workflow_id"])
    verdict = authorize(intent.requester, None, wf["user_name"], wf.get("user_dn"), command=intent.command,
                        workflow_id=workflow_id, vo=wf.get("vo"))
    with db.transaction():
        command_id = commands.queue(db, workflow_id, intent.command, intent.params, intent.requester, verdict.as_role, now)
        if not verdict.allowed:
            commands.close(db, command_id, "refused", f"{verdict.reason} (read from a task command on task {intent.task_id})", now)
        else:
            workflows.make_due(db, workflow_id, now)
    stats.add("task_command_intents" if verdict.allowed else "task_command_intents_refused")
    if not verdict.allowed:
        return None
    return {"command_id": command_id, "workflow_id": workflow_id, "command": intent.command, "params": intent.params,
            "requester": intent.requester, "requester_role": verdict.as_role, "status": "queued"}
