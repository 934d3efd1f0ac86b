"""Reads of upstream JEDI and DEFT tables (JEDI_Tasks, JEDI_Datasets, DEFT T_TASK) that our processor needs in bulk.

Upstream's TaskBuffer offers these one task at a time; a processor following thousands of steps reads them here
in one statement per 500 tasks instead.
"""

from __future__ import annotations

from .connection import WfDatabase, chunks, in_clause


def _by_task(db: WfDatabase, jedi_task_ids, select: str, where: str = ""):
    """Rows of ``select ... <task id column> IN (...) <where>`` for the tasks, one statement per 500 ids; the first
    column of each row is the task id (as an int)."""
    for part in chunks(sorted(set(jedi_task_ids)), 500):
        id_sql, binds = in_clause("t", part)
        for row in db.query(f"{select} IN {id_sql} {where}", binds):
            yield (int(row[0]), *row[1:])


def task_statuses(db: WfDatabase, jedi_task_ids: list[int]) -> dict[int, str]:
    return {task_id: status for task_id, status in
            _by_task(db, jedi_task_ids, f"SELECT jediTaskID, status FROM {db.table('JEDI_Tasks')} WHERE jediTaskID")}


def find_submitted_task(db: WfDatabase, vo: str, prod_source_label: str, user_name: str, task_name: str) -> int | None:
    """The task id a previous submission got, if DEFT has it: how a restarted processor avoids a second submit."""
    rows = db.query(
        f"SELECT taskid FROM {db.schema_deft}.T_TASK WHERE vo=:vo AND prodSourceLabel=:label AND userName=:user AND taskName=:name "
        "ORDER BY taskid DESC",
        {":vo": vo, ":label": prod_source_label, ":user": user_name, ":name": task_name},
    )
    return int(rows[0][0]) if rows else None


def task_states(db: WfDatabase, jedi_task_ids: list[int]) -> dict[int, tuple[str, str | None]]:
    """(status, errorDialog) per task: the status to follow, and the words a failure is classified by."""
    select = f"SELECT jediTaskID, status, errorDialog FROM {db.table('JEDI_Tasks')} WHERE jediTaskID"
    return {task_id: (status, dialog) for task_id, status, dialog in _by_task(db, jedi_task_ids, select)}


def queued_task_commands(db: WfDatabase, jedi_task_ids: list[int]) -> dict[int, str]:
    """The command waiting in DEFT PRODSYS_COMM per task (``retry`` until JEDI picks it up, then ``retrying`` or
    ``retry failed``): until then a task we asked to retry still shows the status it ended in."""
    return {task_id: command for task_id, (command, _) in task_commands(db, jedi_task_ids).items()}


def task_commands(db: WfDatabase, jedi_task_ids: list[int]) -> dict[int, tuple[str, str | None]]:
    """(comm_cmd, comm_comment) of the DEFT PRODSYS_COMM row per task: the last command anyone sent it, and who
    (upstream writes ``"<command> by <compact DN>"`` unless the sender gave its own comment)."""
    select = f"SELECT comm_task, comm_cmd, comm_comment FROM {db.schema_deft}.PRODSYS_COMM WHERE comm_task"
    return {task_id: (command, comment) for task_id, command, comment in _by_task(db, jedi_task_ids, select)}


def input_progress(db: WfDatabase, jedi_task_ids: list[int]) -> dict[int, tuple[int, int, int]]:
    """(files, finished, failed) of each task's primary inputs (JEDI_Datasets input/pseudo_input, not secondaries)."""
    select = f"SELECT jediTaskID, SUM(nFiles), SUM(nFilesFinished), SUM(nFilesFailed) FROM {db.table('JEDI_Datasets')} WHERE jediTaskID"
    rows = _by_task(db, jedi_task_ids, select, "AND type IN ('input','pseudo_input') AND masterID IS NULL GROUP BY jediTaskID")
    return {task_id: (int(n or 0), int(finished or 0), int(failed or 0)) for task_id, n, finished, failed in rows}


def with_jedi_status(db: WfDatabase, step_rows: list[dict]) -> list[dict]:
    """Commands depend on what JEDI says of ended tasks too (retry works for failed, not for broken tasks).

    A pause JEDI has not picked up yet counts as done: a resume planned now must still resume that task.
    """
    task_ids = [int(s["jedi_task_id"]) for s in step_rows if s["jedi_task_id"]]
    statuses = task_statuses(db, task_ids)
    waiting = queued_task_commands(db, task_ids)
    for s in step_rows:
        if s["jedi_task_id"]:
            task_id = int(s["jedi_task_id"])
            s["jedi_status"] = "paused" if waiting.get(task_id) == "pause" else statuses.get(task_id)
    return step_rows
