"""JEDI_WF_WORKFLOWS: one row per workflow; claimed by processors in batches with SKIP LOCKED plus a lease."""

from __future__ import annotations

import datetime
from typing import Mapping, NamedTuple

from pandajedi_wf.workflow.lifecycles import WORKFLOW_ENDED

from . import upstream_workflows
from .connection import WfDatabase, chunks, in_clause, json_text, json_value
from .status_updates import guarded_status_changes

TABLE = "JEDI_WF_WORKFLOWS"
# one id space with upstream's workflows table: the id pchain_native's user was given is our workflow id and the
# reqID of every task of the workflow, and a workflow submitted another way can never take an id the server gives
SEQUENCE = upstream_workflows.ID_SEQUENCE
# steps whose JEDI task's changes wake their workflow: the active ones with a task (workflow.lifecycles STEP_ACTIVE
# but submitting), and cancelled ones whose task is being killed
FOLLOWING_A_TASK = ("cancelled", "retrying", "running", "submitted")


def claim_due(db: WfDatabase, statuses, owner: str, now: datetime.datetime, lease_seconds: int, batch_size: int) -> list[int]:
    """Lease up to ``batch_size`` due workflows to ``owner``; rows locked or leased by another processor are skipped."""
    return list(claim_due_leases(db, statuses, owner, now, lease_seconds, batch_size))


def claim_due_leases(
    db: WfDatabase,
    statuses: list[str] | tuple[str, ...],
    owner: str,
    now: datetime.datetime,
    lease_seconds: int,
    batch_size: int,
) -> dict[int, tuple[datetime.datetime | None, str | None]]:
    """``claim_due``, telling for each workflow the lease the claim replaced: (lock_time, locked_by) before it.

    Due means active, or ended with a command waiting (a retry or rerun of a failed workflow).

    The lease (locked_by, lock_time) outlives the short claiming transaction, so N processors can share the table
    without holding row locks while they talk to JEDI, and a crashed processor's lease simply expires.
    """
    with db.transaction():
        return lease_due(db, statuses, owner, now, lease_seconds, batch_size)


def lease_due(
    db: WfDatabase,
    statuses: list[str] | tuple[str, ...],
    owner: str,
    now: datetime.datetime,
    lease_seconds: int,
    batch_size: int,
) -> dict[int, tuple[datetime.datetime | None, str | None]]:
    """``claim_due_leases`` inside the caller's transaction: the claimed rows stay locked until it ends."""
    replaced = lock_due(db, statuses, now, lease_seconds, batch_size)
    lease(db, list(replaced), owner, now)
    return replaced


def lock_due(
    db: WfDatabase, statuses: list[str] | tuple[str, ...], now: datetime.datetime, lease_seconds: int, batch_size: int
) -> dict[int, tuple[datetime.datetime | None, str | None]]:
    """Up to ``batch_size`` due workflows, row-locked in the caller's transaction, with their current lease
    (lock_time, locked_by). Run inside ``db.transaction()``, then ``lease`` (or ``back_off``) them before it ends.

    Oldest due first (``check_after``, then id, the order of ``JEDI_WF_WORKFLOWS_DUE_IDX``), so every due workflow
    gets its turn however many are due; rows another processor's claim holds are skipped, the next due ones taken
    instead (``WfDatabase.claim_rows``). Due means in one of ``statuses``, or with a command waiting (a retry or
    rerun of an ended workflow, which the command made due).
    """
    status_sql, binds = in_clause("st", statuses)
    binds.update({":now": now, ":expired": now - datetime.timedelta(seconds=lease_seconds)})
    rows = db.claim_rows(
        f"SELECT workflow_id, lock_time, locked_by FROM {db.table(TABLE)} w WHERE check_after<=:now "
        f"AND (locked_by IS NULL OR lock_time<:expired) AND (status IN {status_sql} OR EXISTS "
        f"(SELECT 1 FROM {db.table('JEDI_WF_COMMANDS')} c WHERE c.workflow_id=w.workflow_id AND c.status='queued')) "
        "ORDER BY check_after, workflow_id",
        binds,
        batch_size,
    )
    return {int(r[0]): (r[1], r[2]) for r in rows}


def lease(db: WfDatabase, workflow_ids: list[int], owner: str, now: datetime.datetime) -> None:
    """The lease (locked_by, lock_time) of workflows ``lock_due`` locked: it outlives the claiming transaction."""
    for part in chunks(workflow_ids, 500):
        id_sql, id_binds = in_clause("id", part)
        id_binds.update({":owner": owner, ":now": now})
        db.execute(f"UPDATE {db.table(TABLE)} SET locked_by=:owner, lock_time=:now WHERE workflow_id IN {id_sql}", id_binds)


def back_off(db: WfDatabase, due: dict[datetime.datetime, list[int]]) -> None:
    """Workflows ``lock_due`` locked and found with nothing to do, due again at the given times, without a lease
    (``lock_time`` stays that of the claim whose decision they keep). A command queued meanwhile waits for the row
    lock and makes the workflow due after this."""
    for check_after, ids in sorted(due.items()):
        for part in chunks(sorted(ids), 500):
            id_sql, id_binds = in_clause("id", part)
            id_binds[":check_after"] = check_after
            db.execute(f"UPDATE {db.table(TABLE)} SET check_after=:check_after WHERE workflow_id IN {id_sql}", id_binds)


def release(db: WfDatabase, workflow_ids: list[int], owner: str, check_after: datetime.datetime) -> None:
    """Give claimed workflows back, due again at ``check_after``; only the lease holder may release.

    A workflow whose user queued a command during the cycle stays due at once (the command's own wake-up would
    otherwise be overwritten by this back-off). One whose row says it has ended leaves the processor's queue
    (check_after NULL) until a command makes it due: decided by the row's status, not the caller's view of it,
    which another processor may have changed meanwhile (a retry of a failed workflow must not drop out of the
    queue because this pass still saw it failed). ``lock_time`` stays: without an owner it is no lease, but the time
    this workflow's JEDI tasks were last read, which the wake-up compares with.
    """
    if not workflow_ids:
        return
    ended_sql, binds = in_clause("ended", sorted(WORKFLOW_ENDED))
    for part in chunks(workflow_ids, 500):
        id_sql, id_binds = in_clause("id", part)
        id_binds.update(binds)
        id_binds.update({":owner": owner, ":check_after": check_after})
        db.execute(
            f"UPDATE {db.table(TABLE)} SET locked_by=NULL, check_after=CASE WHEN EXISTS "
            f"(SELECT 1 FROM {db.table('JEDI_WF_COMMANDS')} c WHERE c.workflow_id={db.table(TABLE)}.workflow_id AND c.status='queued') "
            f"THEN lock_time WHEN status IN {ended_sql} THEN NULL ELSE :check_after END WHERE workflow_id IN {id_sql} AND locked_by=:owner",
            id_binds,
        )


COLUMNS = (
    "workflow_id, parent_workflow_id, name, user_name, user_dn, vo, prod_source_label, language, status, prev_status, "
    "out_ds, definition, request, retry_policy, error_dialog, creation_time, modification_time, status_change_time, "
    "check_after, locked_by, lock_time"
)
JSON_COLUMNS = ("definition", "request", "retry_policy")


def insert(
    db: WfDatabase,
    *,
    name: str,
    user_name: str,
    user_dn: str | None,
    vo: str,
    prod_source_label: str,
    language: str,
    status: str,
    out_ds: str | None,
    definition: dict | None,
    request: dict | None,
    error_dialog: str | None,
    now: datetime.datetime,
    parent_workflow_id: int | None = None,
    retry_policy: dict | None = None,
    workflow_id: int | None = None,
) -> int:
    """A new workflow row. Its id is ``workflow_id`` when the PanDA server already gave one (intake), otherwise drawn
    from the shared sequence first, so the caller can log it before commit."""
    if workflow_id is None:
        (workflow_id,) = db.next_ids(SEQUENCE, 1)
    db.execute(
        f"INSERT INTO {db.table(TABLE)} (workflow_id, parent_workflow_id, name, user_name, user_dn, vo, prod_source_label, "
        "language, status, out_ds, definition, request, retry_policy, error_dialog, creation_time, modification_time, "
        "status_change_time, check_after) VALUES (:workflow_id, :parent, :name, :user_name, :user_dn, :vo, :label, :language, "
        ":status, :out_ds, :definition, :request, :retry_policy, :error_dialog, :now, :now, :now, :check_after) ",
        {
            ":workflow_id": workflow_id,
            ":parent": parent_workflow_id,
            ":name": name[:256],
            ":user_name": user_name,
            ":user_dn": user_dn,
            ":vo": vo,
            ":label": prod_source_label,
            ":language": language,
            ":status": status,
            ":out_ds": out_ds,
            ":definition": json_text(definition),
            ":request": json_text(request),
            ":retry_policy": json_text(retry_policy),
            ":error_dialog": error_dialog[:4000] if error_dialog else None,
            ":now": now,
            ":check_after": None if status in WORKFLOW_ENDED else now,  # an ended one is not in the processor's queue
        },
    )
    return workflow_id


def load(db: WfDatabase, workflow_ids: list[int], skip_definition: set[int] | frozenset = frozenset()) -> dict[int, dict]:
    """Workflow rows; for ids in ``skip_definition`` (the caller has them parsed already) without the bulky
    ``definition`` and ``request`` documents, which never change after submission."""
    found: dict[int, dict] = {}
    light = [c.strip() for c in COLUMNS.split(",") if c.strip() not in ("definition", "request")]
    for ids, columns in (([w for w in workflow_ids if w not in skip_definition], COLUMNS), ([w for w in workflow_ids if w in skip_definition], ", ".join(light))):
        for part in chunks(ids, 500):
            id_sql, binds = in_clause("wf", part)
            for row in db.query_dicts(f"SELECT {columns} FROM {db.table(TABLE)} WHERE workflow_id IN {id_sql}", binds):
                for col in JSON_COLUMNS:
                    if col in row:
                        row[col] = json_value(row[col])
                found[int(row["workflow_id"])] = row
    return found


def load_documents(db: WfDatabase, workflow_id: int) -> dict:
    """The definition and request of one workflow (when a cached copy turned out stale)."""
    rows = db.query_dicts(f"SELECT definition, request FROM {db.table(TABLE)} WHERE workflow_id=:w", {":w": workflow_id})
    return {k: json_value(v) for k, v in rows[0].items()} if rows else {"definition": None, "request": None}


def change_status_grouped(db: WfDatabase, changes: list[tuple[int, str, str]], now: datetime.datetime) -> list[int]:
    """(workflow_id, from, to) guarded, one statement per (from, to) pair; returns the ids that did not move."""
    return guarded_status_changes(db, TABLE, "workflow_id", changes, now)


def set_errors(db: WfDatabase, errors: list[tuple[int, str]], now: datetime.datetime) -> None:
    db.executemany(
        f"UPDATE {db.table(TABLE)} SET error_dialog=:error_dialog, modification_time=:now WHERE workflow_id=:workflow_id ",
        [{":error_dialog": e[:4000], ":now": now, ":workflow_id": w} for w, e in errors],
    )


def change_status(
    db: WfDatabase, workflow_id: int, from_status: str, to_status: str, now: datetime.datetime, error_dialog: str | None = None
) -> bool:
    """Guarded status change; False when the row was no longer in ``from_status`` (a command got there first)."""
    cur = db.execute(
        f"UPDATE {db.table(TABLE)} SET status=:to_status, prev_status=status, status_change_time=:now, modification_time=:now, "
        "error_dialog=COALESCE(:error_dialog, error_dialog) WHERE workflow_id=:workflow_id AND status=:from_status ",
        {":to_status": to_status, ":now": now, ":error_dialog": error_dialog[:4000] if error_dialog else None,
         ":workflow_id": workflow_id, ":from_status": from_status},
    )
    return cur.rowcount == 1


def set_error(db: WfDatabase, workflow_id: int, error_dialog: str, now: datetime.datetime) -> None:
    """Record a problem where the user sees it (show/list print error_dialog) without touching the status."""
    db.execute(
        f"UPDATE {db.table(TABLE)} SET error_dialog=:error_dialog, modification_time=:now WHERE workflow_id=:workflow_id",
        {":error_dialog": error_dialog[:4000], ":now": now, ":workflow_id": workflow_id},
    )


def list_workflows(db: WfDatabase, user_name: str | None = None, status: str | None = None, limit: int = 1000) -> list[dict]:
    sql = (
        f"SELECT workflow_id, name, user_name, status, language, out_ds, error_dialog, creation_time, status_change_time "
        f"FROM {db.table(TABLE)} WHERE 1=1 "
    )
    binds: dict = {":n": limit}
    if user_name:
        sql += "AND user_name=:user_name "
        binds[":user_name"] = user_name
    if status:
        sql += "AND status=:status "
        binds[":status"] = status
    return db.query_dicts(f"SELECT * FROM ({sql} ORDER BY workflow_id DESC) WHERE rownum<=:n ", binds)


class TaskChange(NamedTuple):
    """One of JEDI's task rows as the wake-up reads it: when it last changed (the watermark) and when its status did."""

    changed_at: datetime.datetime  # realModificationTime
    state_changed_at: datetime.datetime | None  # stateChangeTime


def changed_tasks(db: WfDatabase, since: datetime.datetime, after: bool = False) -> dict[int, TaskChange]:
    """JEDI's tasks changed since ``since`` (strictly after it with ``after``), by task id.

    Read through upstream's index on ``JEDI_Tasks.realModificationTime`` (``JEDI_TASKS_REALMODTIME_IDX`` on both
    backends), which upstream's trigger sets to the real time of every change of ``modificationTime``, as JEDI
    writes it with its status changes (``modificationTime`` itself is set to old values on purpose to reorder JEDI's
    queues): the cost follows the changes, not the number of tasks or of our workflows. ``stateChangeTime`` comes
    from the same row fetch, so deciding which workflows to wake never reads JEDI_Tasks again.
    """
    operator = ">" if after else ">="
    return {int(task_id): TaskChange(changed_at, state_changed_at) for task_id, changed_at, state_changed_at in db.query(
        f"SELECT jediTaskID, realModificationTime, stateChangeTime FROM {db.table('JEDI_Tasks')} WHERE realModificationTime{operator}:since",
        {":since": since})}


def count_changed(db: WfDatabase, since: datetime.datetime, until: datetime.datetime) -> int:
    """How many of JEDI's tasks last changed between ``since`` and ``until`` (both included): an index range count,
    which tells whether a change committed late has appeared in a window already read."""
    ((n,),) = db.query(f"SELECT COUNT(*) FROM {db.table('JEDI_Tasks')} WHERE realModificationTime>=:since AND realModificationTime<=:until",
                       {":since": since, ":until": until})
    return int(n)


def wake_for_tasks(db: WfDatabase, now: datetime.datetime, changes: Mapping[int, TaskChange]) -> tuple[int, set[int]]:
    """Make due now every backing-off workflow with a step following one of these changed tasks whose status changed
    since the workflow was last claimed (its ``lock_time``: the claim comes before the pass reads JEDI, so no change
    can fall in between). Returns (workflows made due, tasks whose workflow a processor holds right now: the holder
    may have read JEDI before the change, so they are to be looked at again once it released the workflow).

    Two reads by key (the steps through ``JEDI_WF_STEPS_TASK_IDX``, then their workflows), and the decision here;
    the tasks' status change times came with the changes (``changed_tasks``), so JEDI_Tasks is not joined."""
    step_sql, binds = in_clause("st", FOLLOWING_A_TASK)
    following: dict[int, list[tuple[int, datetime.datetime | None]]] = {}  # workflow -> (task, its status change time)
    for part in chunks(sorted(changes), 500):
        task_sql, task_binds = in_clause("t", part)
        for task_id, workflow_id in db.query(
            f"SELECT jedi_task_id, workflow_id FROM {db.table('JEDI_WF_STEPS')} WHERE jedi_task_id IN {task_sql} AND status IN {step_sql}",
            binds | task_binds,
        ):
            following.setdefault(int(workflow_id), []).append((int(task_id), changes[int(task_id)].state_changed_at))
    due, held = [], set()
    for part in chunks(sorted(following), 500):
        id_sql, id_binds = in_clause("wf", part)
        for workflow_id, locked_by, lock_time, check_after in db.query(
            f"SELECT workflow_id, locked_by, lock_time, check_after FROM {db.table(TABLE)} WHERE workflow_id IN {id_sql}", id_binds
        ):
            changed = [task_id for task_id, changed_at in following[int(workflow_id)]
                       if changed_at is not None and (lock_time is None or changed_at >= lock_time)]
            if not changed:
                continue  # nothing new since its claim
            if locked_by is not None:
                held.update(changed)  # its holder may have read JEDI before the change
            elif check_after is not None and check_after > now:  # (None: ended; not after now: due already)
                due.append(int(workflow_id))
    made_due = 0
    for part in chunks(due, 500):
        id_sql, id_binds = in_clause("wf", part)
        id_binds[":now"] = now
        made_due += db.execute(f"UPDATE {db.table(TABLE)} SET check_after=:now WHERE workflow_id IN {id_sql} AND check_after>:now "
                               "AND locked_by IS NULL", id_binds).rowcount
    return made_due, held


def make_due(db: WfDatabase, workflow_id: int, now: datetime.datetime) -> None:
    """Bring a workflow forward in the processor's queue (a command is waiting for it)."""
    db.execute(f"UPDATE {db.table(TABLE)} SET check_after=:now WHERE workflow_id=:workflow_id", {":now": now, ":workflow_id": workflow_id})
