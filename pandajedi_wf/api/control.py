"""Commanding a workflow: check who asks, check the command makes sense now, then queue it for the processor.

Refusals (wrong requester, or a command the workflow's state does not allow) are answered at once and stored as
``refused`` commands, so the history shows them too; nothing about the workflow changes.
"""

from __future__ import annotations

from pandajedi_wf.control import COMMANDS, authorize, plan_command
from pandajedi_wf.core.clock import utcnow
from pandajedi_wf.taskbuffer import commands, steps, workflows
from pandajedi_wf.taskbuffer.jedi_tasks import with_jedi_status
from pandajedi_wf.taskbuffer.connection import WfDatabase

from .queries import WorkflowNotFound


def command_workflow(db: WfDatabase, workflow_id: int, command: str, params: dict | None, requester: str | None,
                     role: str | list[str] | None, production_dns: tuple[str, ...] | list[str] = ()) -> dict:
    """Returns ``{"command_id", "status": "queued"|"refused", "message"}``.

    ``requester`` is who the caller verified (a DN from the PanDA server's front end, or the operator's name from the
    operator CLI), ``role`` 'production' or the FQANs that came with that identity; never anything the payload says.
    """
    if command not in COMMANDS:
        return {"command_id": None, "status": "refused", "message": f"unknown command {command!r}; known: {', '.join(sorted(COMMANDS))}"}
    found = workflows.load(db, [workflow_id])
    if workflow_id not in found:
        raise WorkflowNotFound(f"no workflow with id {workflow_id}")
    wf = found[workflow_id]
    now = utcnow()
    verdict = authorize(requester, role, wf["user_name"], wf["user_dn"], command=command, workflow_id=workflow_id, vo=wf["vo"],
                        production_dns=production_dns)
    refusal = None if verdict.allowed else verdict.reason
    if refusal is None:
        step_rows = with_jedi_status(db, steps.load_for_workflows(db, [workflow_id])[workflow_id])
        plan = plan_command(command, params or {}, wf["status"], step_rows,
                            workflow_id=workflow_id, production_role=verdict.as_role in ("production", "operator"))
        refusal = None if plan.accepted else plan.refusal
    with db.transaction():
        command_id = commands.queue(db, workflow_id, command, params, requester, verdict.as_role or _role_text(role), now)
        if refusal is not None:
            commands.close(db, command_id, "refused", refusal, now)
        else:
            workflows.make_due(db, workflow_id, now)
    if refusal is not None:
        return {"command_id": command_id, "status": "refused", "message": refusal}
    return {"command_id": command_id, "status": "queued", "message": f"{command} of workflow {workflow_id} queued; the processor executes it in its next cycle"}


def _role_text(role: str | list[str] | None) -> str | None:
    """What a refused command records as the requester's role (the column holds one short text)."""
    if role is None or isinstance(role, str):
        return role
    return ",".join(role)[:64] or None
