"""What users ask about their workflows: one workflow in full, lists, and the way back from a JEDI task id."""

from __future__ import annotations

from pandajedi_wf.taskbuffer import commands, jedi_tasks, steps, transitions, workflow_data, workflows
from pandajedi_wf.taskbuffer.connection import WfDatabase

from .errors import WorkflowNotFound

__all__ = ["WorkflowNotFound", "list_workflows", "show_by_task", "show_workflow"]


def show_workflow(db: WfDatabase, workflow_id: int) -> dict:
    """The workflow with its steps (JEDI task ids and statuses), data, commands and transition history."""
    found = workflows.load(db, [workflow_id])
    if workflow_id not in found:
        raise WorkflowNotFound(f"no workflow with id {workflow_id}")
    wf = found[workflow_id]
    step_rows = steps.load_for_workflows(db, [workflow_id])[workflow_id]
    jedi_status = jedi_tasks.task_statuses(db, [s["jedi_task_id"] for s in step_rows if s["jedi_task_id"]])
    step_names = {int(s["step_id"]): s["node_key"] for s in step_rows}
    return {
        "workflow_id": workflow_id,
        "name": wf["name"],
        "user_name": wf["user_name"],
        "vo": wf["vo"],
        "prod_source_label": wf["prod_source_label"],
        "parent_workflow_id": wf["parent_workflow_id"],
        "status": wf["status"],
        "language": wf["language"],
        "out_ds": wf["out_ds"],
        "creation_time": wf["creation_time"],
        "modification_time": wf["modification_time"],
        "error_dialog": wf["error_dialog"],
        "steps": [
            {
                "step_id": int(s["step_id"]),
                "node_key": s["node_key"],
                "node_id": s["node_id"],
                "parent_keys": list(s["parent_keys"] or ()),
                "name": s["name"],
                "step_type": s["step_type"],
                "status": s["status"],
                "iteration": s["iteration"],
                "jedi_task_id": s["jedi_task_id"],
                "jedi_status": jedi_status.get(int(s["jedi_task_id"])) if s["jedi_task_id"] else None,
                "task_name": s["task_name"],
                "attempt_nr": s["attempt_nr"],
                "error_class": s["error_class"],
                "retry_after": s["retry_after"],
                "error_dialog": s["error_dialog"],
            }
            for s in sorted(step_rows, key=lambda r: r["node_key"])
        ],
        "data": workflow_data.for_workflow(db, workflow_id),
        "commands": commands.for_workflow(db, workflow_id),
        "history": [
            {
                "time": h["transition_time"],
                "entity": h["entity_type"],
                "key": step_names.get(int(h["entity_id"]), str(h["entity_id"])) if h["entity_type"] == "step" else str(h["entity_id"]),
                "from": h["from_status"],
                "to": h["to_status"],
                "why": h["reason"],
                "actor": h["actor"],
            }
            for h in transitions.workflow_history(db, workflow_id)
        ],
    }


def show_by_task(db: WfDatabase, jedi_task_id: int) -> dict:
    """The workflow a JEDI task belongs to (any step's task id leads back to its workflow)."""
    step = steps.get_by_task_id(db, jedi_task_id)
    if step is None:
        raise WorkflowNotFound(f"JEDI task {jedi_task_id} is not a step of any pandajedi_wf workflow")
    answer = show_workflow(db, int(step["workflow_id"]))
    answer["via_step"] = step["node_key"]
    return answer


def list_workflows(db: WfDatabase, user_name: str | None = None, status: str | None = None, limit: int = 1000) -> list[dict]:
    rows = workflows.list_workflows(db, user_name, status, limit)
    counts = steps.status_counts(db, [int(r["workflow_id"]) for r in rows])
    for row in rows:
        by_status = counts.get(int(row["workflow_id"]), {})
        row["steps_by_status"] = by_status
        row["n_steps"] = sum(by_status.values())
        row["modification_time"] = row.pop("status_change_time")
    return rows
