"""JEDI_WF_COMMANDS: user and operator commands, queued here and executed by the workflow processor.

Storing the command (rather than acting in the caller's process) makes it safe with several processors and across
crashes: exactly one processor, the one holding the workflow's lease, takes it from ``queued`` to an end status.
"""

from __future__ import annotations

import datetime

from .connection import WfDatabase, chunks, in_clause, json_text, json_value

TABLE = "JEDI_WF_COMMANDS"
SEQUENCE = "JEDI_WF_COMMAND_ID_SEQ"
COLUMNS = "command_id, workflow_id, command, params, requester, requester_role, status, message, creation_time, done_time"


def queue(db: WfDatabase, workflow_id: int, command: str, params: dict | None, requester: str | None, role: str | None,
          now: datetime.datetime) -> int:
    (command_id,) = db.next_ids(SEQUENCE, 1)
    db.execute(
        f"INSERT INTO {db.table(TABLE)} ({COLUMNS}) VALUES (:command_id, :workflow_id, :command, :params, :requester, :role, "
        "'queued', NULL, :now, NULL) ",
        {":command_id": command_id, ":workflow_id": workflow_id, ":command": command, ":params": json_text(params or {}),
         ":requester": requester, ":role": role, ":now": now},
    )
    return command_id


def queued_for(db: WfDatabase, workflow_ids: list[int]) -> dict[int, list[dict]]:
    """Queued commands of a batch of workflows, oldest first (they are executed in the order they were given)."""
    found: dict[int, list[dict]] = {}
    for part in chunks(workflow_ids, 500):
        id_sql, binds = in_clause("wf", part)
        for row in db.query_dicts(
            f"SELECT {COLUMNS} FROM {db.table(TABLE)} WHERE status='queued' AND workflow_id IN {id_sql} ORDER BY command_id", binds
        ):
            row["params"] = json_value(row["params"])
            found.setdefault(int(row["workflow_id"]), []).append(row)
    return found


def close(db: WfDatabase, command_id: int, status: str, message: str, now: datetime.datetime) -> bool:
    """queued -> done | refused | failed, once: False if someone else closed it first."""
    cur = db.execute(
        f"UPDATE {db.table(TABLE)} SET status=:status, message=:message, done_time=:now WHERE command_id=:command_id AND status='queued' ",
        {":status": status, ":message": message[:4000], ":now": now, ":command_id": command_id},
    )
    return cur.rowcount == 1


def for_workflow(db: WfDatabase, workflow_id: int) -> list[dict]:
    rows = db.query_dicts(f"SELECT {COLUMNS} FROM {db.table(TABLE)} WHERE workflow_id=:wf ORDER BY command_id", {":wf": workflow_id})
    for row in rows:
        row["params"] = json_value(row["params"])
    return rows


def get(db: WfDatabase, command_id: int) -> dict | None:
    rows = db.query_dicts(f"SELECT {COLUMNS} FROM {db.table(TABLE)} WHERE command_id=:c", {":c": command_id})
    return rows[0] if rows else None


def refused_origins(db: WfDatabase, workflow_ids: list[int]) -> dict[int, set[tuple[str, str, int]]]:
    """(command, requester, task id) of refused commands read from users' task commands, per workflow: a refused
    intent is recorded once, not again each pass while the task command stays in DEFT."""
    found: dict[int, set[tuple[str, str, int]]] = {}
    for part in chunks(workflow_ids, 500):
        id_sql, binds = in_clause("wf", part)
        for workflow_id, command, requester, params in db.query(
            f"SELECT workflow_id, command, requester, params FROM {db.table(TABLE)} WHERE status='refused' AND workflow_id IN {id_sql}",
            binds,
        ):
            task_id = (json_value(params) or {}).get("from_task_command")
            if task_id is not None:
                found.setdefault(int(workflow_id), set()).add((command, requester, int(task_id)))
    return found
