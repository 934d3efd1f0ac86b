"""``get_workflow_details``: one workflow in the shape panda-client 2.2.0 renders (``pbook show_native_workflow``).

panda-client's ``LocalNativeWorkflowSpec`` reads ``workflow_id, name, status, submitted_as, user, parent_id, reason``
and lists of ``steps`` (``step_id, member_id, name, status, flavor, prod_source_label, progress{pct_finished,
n_files_finished, n_files_failed, n_files}, target_id, parent_step_ids, reason``) and ``data`` (``name, status, type,
target_id``). Ours adds what its table cannot show (node_key, JEDI status, error class) under extra keys.
"""

from __future__ import annotations

CONTAINER_TYPE = "workflow"  # a sub-workflow, loop or scatter body: no JEDI task of its own


def native_details(shown: dict, prod_source_label: str | None, parent_id: int | None, progress: dict[int, dict]) -> dict:
    """Pure: ``api.queries.show_workflow``'s answer (with step ``parent_keys``) -> the client's shape."""
    step_ids = {s["node_key"]: s["step_id"] for s in shown["steps"]}
    steps = []
    for s in shown["steps"]:
        task_id = s.get("jedi_task_id")
        steps.append({
            "step_id": s["step_id"],
            "member_id": s.get("node_id"),
            "name": s["name"],
            "node_key": s["node_key"],
            "status": s["status"],
            "flavor": "sub_workflow" if s.get("step_type") == CONTAINER_TYPE else "panda_task",
            "step_type": s.get("step_type"),
            "prod_source_label": prod_source_label,
            "progress": progress.get(int(task_id)) if task_id else None,
            "target_id": task_id,
            "jedi_status": s.get("jedi_status"),
            "parent_step_ids": [step_ids[k] for k in s.get("parent_keys") or () if k in step_ids],
            "reason": s.get("error_dialog"),
            "error_class": s.get("error_class"),
        })
    return {
        "workflow_id": shown["workflow_id"],
        "name": shown["name"],
        "status": shown["status"],
        "submitted_as": prod_source_label,
        "user": shown["user_name"],
        "parent_id": parent_id,
        "reason": shown.get("error_dialog"),
        "engine": "pandajedi_wf",
        "steps": steps,
        "data": [
            {"name": d.get("name"), "status": d.get("status"), "type": d.get("data_type"), "target_id": d.get("name"),
             "n_files": d.get("n_files"), "n_files_done": d.get("n_files_done")}
            for d in shown.get("data", [])
        ],
    }


def progress_of(counts: tuple[int, int, int]) -> dict | None:
    """Input files of a task (total, finished, failed) as the client shows them; None (the client shows '-') when
    JEDI counts no input file (a generator task, or inputs not known yet)."""
    total, finished, failed = counts
    if not total:
        return None
    return {
        "n_files": total,
        "n_files_finished": finished,
        "n_files_failed": failed,
        "pct_finished": round(100.0 * finished / total, 1),
    }
