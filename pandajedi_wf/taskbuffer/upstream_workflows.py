"""Upstream PanDA's own ``workflows`` table: where the PanDA server puts what ``pchain_native`` submits.

``/api/v1/workflow/submit_workflow_raw_request`` (upstream ``WorkflowInterface.register_workflow``) inserts a row
``status='registered'`` with the client's request in ``raw_request_json`` (plus the ``user_dn`` the server verified),
``definition_json`` NULL and an id from ``WORKFLOW_ID_SEQ``; that id is what the user is told. Our intake claims such
rows the way upstream's own code locks them (``locked_by``/``lock_time``, a lock older than its expiry is free), turns
them into our workflows under the same id, and answers on the row: a status a reader of that table understands, our
engine and status in ``parameters``, the workflow's name. Afterwards the row's status follows ours
(``mirror_statuses``).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from .connection import WfDatabase, in_clause, json_text, json_value

TABLE = "workflows"  # upstream's, in schemaJEDI (pandaserver/workflow/workflow_base.py WorkflowSpec)
ID_SEQUENCE = "WORKFLOW_ID_SEQ"  # upstream's: every workflow id, ours included, is drawn from it (one id space)
ENGINE = "pandajedi_wf"

# our workflow status -> the upstream status written on its row (upstream WorkflowStatus has no paused/finishing/
# cancelling/finished: active ones read as running, a partial success as done; the exact status is in parameters)
UPSTREAM_STATUS = {
    "registered": "registered",
    "parsed": "running",
    "running": "running",
    "paused": "running",
    "finishing": "running",
    "cancelling": "running",
    "done": "done",
    "finished": "done",
    "failed": "failed",
    "cancelled": "cancelled",
}
UPSTREAM_FINAL = frozenset({"done", "failed", "cancelled"})


@dataclass(frozen=True)
class RegisteredRequest:
    """One claimed upstream row: what the server recorded for a ``pchain_native`` submission."""

    workflow_id: int
    user_name: str | None  # clean_user_id(DN), computed by the server
    prod_source_label: str | None
    request: dict | None  # raw_request_json decoded, None when it is not a JSON object
    raw_text_error: str | None  # why raw_request_json could not be read
    parameters: dict  # what earlier intake attempts left on the row


def claim_registered(db: WfDatabase, owner: str, now: datetime.datetime, lock_seconds: int, batch_size: int) -> list[RegisteredRequest]:
    """Lock up to ``batch_size`` registered rows without a definition for ``owner`` (upstream's lock convention).

    SKIP LOCKED lets several intakes share the table; the lock (not a row lock) outlives this transaction, so the
    sandbox download and parse happen without holding a database lock, and a crashed intake's rows free up after
    ``lock_seconds``. Oldest first: a row never taken by when it was registered, a row taken before (its lock kept
    after a transient failure, or left by a crashed intake) by when it was last taken; then by id.
    """
    binds = {":expired": now - datetime.timedelta(seconds=lock_seconds)}
    with db.transaction():
        rows = db.claim_rows(
            f"SELECT workflow_id, username, prodsourcelabel, raw_request_json, parameters FROM {db.table(TABLE)} "
            "WHERE status='registered' AND definition_json IS NULL AND (locked_by IS NULL OR lock_time<:expired) "
            "ORDER BY COALESCE(lock_time, creation_time), workflow_id",
            binds,
            batch_size,
        )
        if rows:
            id_sql, id_binds = in_clause("id", [r[0] for r in rows])
            id_binds.update({":owner": owner, ":now": now})
            db.execute(f"UPDATE {db.table(TABLE)} SET locked_by=:owner, lock_time=:now WHERE workflow_id IN {id_sql}", id_binds)
    claimed = []
    for workflow_id, user_name, label, raw, parameters in rows:
        request, error = _decode_request(raw)
        previous = json_value(parameters) if parameters is not None else None
        claimed.append(RegisteredRequest(int(workflow_id), user_name, label, request, error, previous if isinstance(previous, dict) else {}))
    return claimed


def _decode_request(raw) -> tuple[dict | None, str | None]:
    if raw is None:
        return None, "the request has no raw_request_json"
    try:
        value = json_value(raw)
    except ValueError as exc:
        return None, f"raw_request_json is not JSON: {exc}"
    if not isinstance(value, dict):
        return None, f"raw_request_json must be a JSON object, got {type(value).__name__}"
    return value, None


def answer(db: WfDatabase, workflow_id: int, owner: str, status: str, parameters: dict, now: datetime.datetime,
           name: str | None = None) -> bool:
    """Write the intake's answer on a row ``owner`` holds and release it; False if the lock was lost meanwhile."""
    final = status in UPSTREAM_FINAL
    cur = db.execute(
        f"UPDATE {db.table(TABLE)} SET status=:status, parameters=:parameters, name=COALESCE(:name, name), "
        "modification_time=:now, start_time=COALESCE(start_time, :now), end_time=:end_time, "
        "locked_by=NULL, lock_time=NULL WHERE workflow_id=:workflow_id AND locked_by=:owner",
        {":status": status, ":parameters": json_text(parameters), ":name": name[:256] if name else None, ":now": now,
         ":end_time": now if final else None, ":workflow_id": workflow_id, ":owner": owner},
    )
    return cur.rowcount == 1


def postpone(db: WfDatabase, workflow_id: int, owner: str, parameters: dict) -> None:
    """Leave a row ``registered`` after a transient failure, with what the attempt learned in parameters.

    The lock stays: the row is taken again once it expires (``lock_seconds``), which spaces the attempts out.
    """
    db.execute(
        f"UPDATE {db.table(TABLE)} SET parameters=:parameters WHERE workflow_id=:workflow_id AND locked_by=:owner",
        {":parameters": json_text(parameters), ":workflow_id": workflow_id, ":owner": owner},
    )


def mirror_statuses(db: WfDatabase, now: datetime.datetime, limit: int = 1000) -> int:
    """Rows of workflows we run whose upstream status no longer says what ours does: set it (``UPSTREAM_STATUS``).

    A row is ours once the intake answered it (our engine in parameters, so it is no longer ``registered``); only
    workflows whose status changed since the row was last written are looked at.
    """
    rows = db.query(
        f"SELECT u.workflow_id, u.status, w.status FROM {db.table(TABLE)} u, {db.table('JEDI_WF_WORKFLOWS')} w "
        "WHERE w.workflow_id=u.workflow_id AND u.status<>'registered' AND u.locked_by IS NULL "
        "AND w.status_change_time>=u.modification_time AND rownum<=:n",
        {":n": limit},
    )
    changes = [(int(wid), UPSTREAM_STATUS.get(ours, "running"), ours) for wid, theirs, ours in rows if UPSTREAM_STATUS.get(ours) != theirs]
    # rows already right are touched too, so they leave the candidates until our status changes again
    settled = [int(wid) for wid, theirs, ours in rows if UPSTREAM_STATUS.get(ours) == theirs]
    for workflow_id, status, ours in changes:
        db.execute(
            f"UPDATE {db.table(TABLE)} SET status=:status, modification_time=:now, "
            "end_time=:end_time WHERE workflow_id=:workflow_id AND locked_by IS NULL",
            {":status": status, ":now": now, ":end_time": now if status in UPSTREAM_FINAL else None, ":workflow_id": workflow_id},
        )
    if settled:
        id_sql, binds = in_clause("id", settled)
        binds[":now"] = now
        db.execute(f"UPDATE {db.table(TABLE)} SET modification_time=:now WHERE workflow_id IN {id_sql}", binds)
    return len(changes)


def statuses(db: WfDatabase, workflow_ids: list[int]) -> dict[int, tuple[str, dict]]:
    """(status, parameters) of upstream rows: what a reader of upstream's table sees."""
    if not workflow_ids:
        return {}
    id_sql, binds = in_clause("id", workflow_ids)
    found = {}
    for workflow_id, status, parameters in db.query(
        f"SELECT workflow_id, status, parameters FROM {db.table(TABLE)} WHERE workflow_id IN {id_sql}", binds
    ):
        value = json_value(parameters) if parameters is not None else None
        found[int(workflow_id)] = (status, value if isinstance(value, dict) else {})
    return found
