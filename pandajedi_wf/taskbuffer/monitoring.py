"""Read-only aggregates behind the monitoring page: a handful of grouped statements, each with a bounded result.

The page must stay cheap however large the tables grow, so nothing here reads one row per workflow or per request:
counts are GROUP BY statements and every list is capped with ``rownum`` (WrappedCursor turns it into LIMIT).
Ordered lists are written ``SELECT * FROM (... ORDER BY ...) WHERE rownum<=:n`` so Oracle orders before it cuts.
"""

from __future__ import annotations

import datetime
from typing import Iterable

from pandajedi_wf.carousel import lifecycle as lc

from . import staging_requests
from .connection import WfDatabase, chunks, in_clause, json_value

WORKFLOWS = "JEDI_WF_WORKFLOWS"
STEPS = "JEDI_WF_STEPS"
TRANSITIONS = "JEDI_WF_TRANSITIONS"
REQUESTS = "JEDI_DC_REQUESTS"
RELATIONS = "JEDI_DC_RELATIONS"
TAPE_STATS = "JEDI_DC_TAPE_STATS"
PRESTAGES = "JEDI_DC_PRESTAGES"

_WORKFLOW_COLUMNS = "workflow_id, parent_workflow_id, name, user_name, status, language, out_ds, error_dialog, creation_time, status_change_time"


def _user_filter(user_name: str | None, binds: dict) -> str:
    if not user_name:
        return ""
    binds[":user_name"] = user_name
    return "AND user_name=:user_name "


def workflow_counts(db: WfDatabase, user_name: str | None = None, limit: int = 500) -> list[tuple[str, str, int]]:
    """(user, status, n) for every user and status, biggest users first when capped."""
    binds: dict = {":n": limit}
    rows = db.query(
        f"SELECT * FROM (SELECT user_name, status, COUNT(*) AS n_workflows FROM {db.table(WORKFLOWS)} WHERE 1=1 "
        f"{_user_filter(user_name, binds)}GROUP BY user_name, status ORDER BY user_name, status) WHERE rownum<=:n ",
        binds,
    )
    return [(user, status, int(n)) for user, status, n in rows]


def recent_workflows(db: WfDatabase, limit: int, user_name: str | None = None, status: str | None = None) -> list[dict]:
    """The newest workflows (or the most recently changed ones in ``status``)."""
    binds: dict = {":n": limit}
    where = _user_filter(user_name, binds)
    order = "workflow_id DESC"
    if status:
        where += "AND status=:status "
        binds[":status"] = status
        order = "status_change_time DESC, workflow_id DESC"
    return db.query_dicts(
        f"SELECT * FROM (SELECT {_WORKFLOW_COLUMNS} FROM {db.table(WORKFLOWS)} WHERE 1=1 {where}ORDER BY {order}) WHERE rownum<=:n ",
        binds,
    )


def step_counts(db: WfDatabase, workflow_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Steps per status of each workflow, one grouped statement per 500 workflows."""
    found: dict[int, dict[str, int]] = {}
    for part in chunks(sorted(set(workflow_ids)), 500):
        id_sql, binds = in_clause("wf", part)
        for workflow_id, status, n in db.query(
            f"SELECT workflow_id, status, COUNT(*) FROM {db.table(STEPS)} WHERE workflow_id IN {id_sql} GROUP BY workflow_id, status", binds
        ):
            found.setdefault(int(workflow_id), {})[status] = int(n)
    return found


def workflow(db: WfDatabase, workflow_id: int) -> dict | None:
    rows = db.query_dicts(f"SELECT {_WORKFLOW_COLUMNS} FROM {db.table(WORKFLOWS)} WHERE workflow_id=:wf", {":wf": workflow_id})
    return rows[0] if rows else None


def workflow_steps(db: WfDatabase, workflow_id: int, limit: int) -> list[dict]:
    """Steps of one workflow with their JEDI task's status (outer join: unsubmitted steps have none)."""
    rows = db.query_dicts(
        f"SELECT * FROM (SELECT s.step_id, s.node_key, s.name, s.step_type, s.status, s.iteration, s.scatter_index, s.parent_keys, "
        "s.jedi_task_id, s.task_name, s.attempt_nr, s.error_dialog, s.status_change_time, t.status AS jedi_status "
        f"FROM {db.table(STEPS)} s LEFT JOIN {db.table('JEDI_Tasks')} t ON t.jediTaskID=s.jedi_task_id "
        "WHERE s.workflow_id=:wf ORDER BY s.step_id) WHERE rownum<=:n ",
        {":wf": workflow_id, ":n": limit},
    )
    for row in rows:
        row["parent_keys"] = json_value(row["parent_keys"]) or []
    return rows


def workflow_history(db: WfDatabase, workflow_id: int, limit: int) -> list[dict]:
    """The latest ``limit`` transitions of a workflow and its steps, newest first."""
    return db.query_dicts(
        f"SELECT * FROM (SELECT transition_id, entity_type, entity_id, from_status, to_status, reason, actor, transition_time "
        f"FROM {db.table(TRANSITIONS)} WHERE workflow_id=:wf ORDER BY transition_id DESC) WHERE rownum<=:n ",
        {":wf": workflow_id, ":n": limit},
    )


# ---- data carousel -----------------------------------------------------------------------------------------


def requests_by_status(db: WfDatabase) -> list[tuple[str, int, datetime.datetime | None]]:
    """(status, n, oldest creation_time) over all staging requests."""
    rows = db.query(f"SELECT status, COUNT(*), MIN(creation_time) FROM {db.table(REQUESTS)} GROUP BY status")
    return [(status, int(n), oldest) for status, n, oldest in rows]


def load_by_tape(db: WfDatabase) -> list[dict]:
    """Per source tape and live status: requests, and files/bytes not yet on disk (what counts against its limits).

    ``dataset_size - staged_size`` is the core's ``bytes_left`` (staged_size is written from it).
    """
    status_sql, binds = in_clause("st", sorted(set(lc.STAGING_REQUEST.states) - set(lc.STAGING_REQUEST.final)))
    return db.query_dicts(
        "SELECT source_rse AS tape, status, COUNT(*) AS n_requests, "
        "SUM(CASE WHEN COALESCE(total_files,0)>COALESCE(staged_files,0) THEN COALESCE(total_files,0)-COALESCE(staged_files,0) ELSE 0 END) AS files_left, "
        "SUM(CASE WHEN COALESCE(dataset_size,0)>COALESCE(staged_size,0) THEN COALESCE(dataset_size,0)-COALESCE(staged_size,0) ELSE 0 END) AS bytes_left "
        f"FROM {db.table(REQUESTS)} WHERE status IN {status_sql} GROUP BY source_rse, status",
        binds,
    )


def buffer_use(db: WfDatabase) -> list[tuple[str, int]]:
    """(destination, bytes reserved) as admission counts them: requests with a tape source holding disk space."""
    status_sql, binds = in_clause("st", sorted(lc.HOLDS_BUFFER))
    rows = db.query(
        f"SELECT destination_rse, SUM(COALESCE(dataset_size,0)) FROM {db.table(REQUESTS)} WHERE status IN {status_sql} "
        "AND source_rse IS NOT NULL GROUP BY destination_rse",
        binds,
    )
    return [(dest, int(n or 0)) for dest, n in rows]


def tape_throughput(db: WfDatabase, limit: int = 1000) -> list[dict]:
    return db.query_dicts(
        f"SELECT * FROM (SELECT tape, throughput_bps, n_samples, updated_at FROM {db.table(TAPE_STATS)} ORDER BY tape) WHERE rownum<=:n ",
        {":n": limit},
    )


def troubled_requests(db: WfDatabase, stalled_before: datetime.datetime, limit: int) -> list[dict]:
    """Requests an operator should look at: switching source, staging without a new file since ``stalled_before``,
    or sent back to the queue with an error (rule refused or vanished); longest without progress first."""
    return db.query_dicts(
        "SELECT * FROM (SELECT request_id, dataset, status, source_rse, destination_rse, total_files, staged_files, "
        "n_source_switches, last_progress_time, creation_time, start_time, error_dialog "
        f"FROM {db.table(REQUESTS)} WHERE status='switching' "
        "OR (status='staging' AND COALESCE(last_progress_time, start_time, creation_time)<:stalled_before ) "
        "OR (status='queued' AND error_dialog IS NOT NULL) "
        "ORDER BY COALESCE(last_progress_time, start_time, creation_time), request_id) WHERE rownum<=:n ",
        {":stalled_before": stalled_before, ":n": limit},
    )


# ---- the interactive workflow page (monitor/dag.py, live updates, finding workflows) -------------------------------

_DAG_STEP_COLUMNS = (
    "s.step_id, s.node_key, s.node_id, s.name, s.step_type, s.status, s.iteration, s.scatter_index, s.parent_keys, s.condition, "
    "s.jedi_task_id, s.task_name, s.attempt_nr, s.error_dialog, s.submit_intent_time, s.status_change_time, s.modification_time, "
    "t.status AS jedi_status"
)


def dag_steps(db: WfDatabase, workflow_id: int, limit: int) -> list[dict]:
    """``workflow_steps`` plus each step's condition, submission and modification times (what the drawn DAG, its
    critical path and the live updates need)."""
    rows = db.query_dicts(
        f"SELECT * FROM (SELECT {_DAG_STEP_COLUMNS} FROM {db.table(STEPS)} s LEFT JOIN {db.table('JEDI_Tasks')} t "
        "ON t.jediTaskID=s.jedi_task_id WHERE s.workflow_id=:wf ORDER BY s.step_id) WHERE rownum<=:n ",
        {":wf": workflow_id, ":n": limit},
    )
    for row in rows:
        row["parent_keys"] = json_value(row["parent_keys"]) or []
        row["condition"] = json_value(row["condition"])
    return rows


def workflow_definition(db: WfDatabase, workflow_id: int) -> dict | None:
    """The parsed definition a workflow was submitted with (``Workflow.to_dict``): its nodes' conditions."""
    rows = db.query(f"SELECT definition FROM {db.table(WORKFLOWS)} WHERE workflow_id=:wf", {":wf": workflow_id})
    return json_value(rows[0][0]) if rows else None


def workflow_live(db: WfDatabase, workflow_id: int) -> dict | None:
    rows = db.query_dicts(
        f"SELECT workflow_id, status, error_dialog, status_change_time, modification_time FROM {db.table(WORKFLOWS)} WHERE workflow_id=:wf",
        {":wf": workflow_id},
    )
    return rows[0] if rows else None


def latest_commands(db: WfDatabase, workflow_id: int, limit: int) -> list[dict]:
    """The newest commands of a workflow (queued, done and refused, with who sent them and the answer)."""
    return db.query_dicts(
        "SELECT * FROM (SELECT command_id, command, params, requester, requester_role, status, message, creation_time, done_time "
        f"FROM {db.table('JEDI_WF_COMMANDS')} WHERE workflow_id=:wf ORDER BY command_id DESC) WHERE rownum<=:n ",
        {":wf": workflow_id, ":n": limit},
    )


def find_workflows(db: WfDatabase, limit: int, user_name: str | None = None, status: str | None = None,
                   name_part: str | None = None) -> list[dict]:
    """The newest workflows matching a user, a status and a part of the name (case-insensitive), capped."""
    binds: dict = {":n": limit}
    where = _user_filter(user_name, binds)
    if status:
        where += "AND status=:status "
        binds[":status"] = status
    if name_part:
        where += "AND LOWER(name) LIKE :name ESCAPE '\\' "
        escaped = name_part.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        binds[":name"] = f"%{escaped}%"
    return db.query_dicts(
        f"SELECT * FROM (SELECT {_WORKFLOW_COLUMNS} FROM {db.table(WORKFLOWS)} WHERE 1=1 {where}ORDER BY workflow_id DESC) WHERE rownum<=:n ",
        binds,
    )


def workflow_of_task(db: WfDatabase, jedi_task_id: int) -> int | None:
    rows = db.query(f"SELECT workflow_id FROM {db.table(STEPS)} WHERE jedi_task_id=:t", {":t": jedi_task_id})
    return int(rows[0][0]) if rows else None


def request_intervals(db: WfDatabase, since: datetime.datetime, limit: int) -> list[dict]:
    """Staging requests that held a tape or a disk buffer at some time after ``since``: their source, destination,
    size and the times their status says they started, ended staging and let the buffer go (newest first, capped).
    The carousel's plots over time are drawn from these intervals (``monitor/plots.py``); ``tried_sources`` (JSON) is
    decoded, its ``tried`` list names the tapes a switched request read from, in order."""
    rows = db.query_dicts(
        "SELECT * FROM (SELECT request_id, dataset, source_rse, destination_rse, status, total_files, dataset_size, start_time, end_time, "
        f"modification_time, n_source_switches, tried_sources FROM {db.table(REQUESTS)} WHERE start_time IS NOT NULL AND source_rse IS NOT NULL "
        "AND (end_time IS NULL OR end_time>=:since OR status='done' OR modification_time>=:since) "
        "ORDER BY start_time DESC, request_id DESC) WHERE rownum<=:n ",
        {":since": since, ":n": limit},
    )
    for row in rows:
        row["tried_sources"] = json_value(row["tried_sources"]) or {}
    return rows


def request_events(db: WfDatabase, request_ids: Iterable[int], statuses: Iterable[str]) -> list[dict]:
    """The carousel's history (JEDI_WF_TRANSITIONS, entity 'staging') of the given requests: their moves into
    ``statuses`` with the reason the carousel wrote (a source switch and why, a rule refused, a failure); by the
    requests' ids (index on entity), oldest first, one statement per 500 requests."""
    status_sql, status_binds = in_clause("st", sorted(set(statuses)))
    found: list[dict] = []
    for part in chunks(sorted(set(request_ids)), 500):
        id_sql, binds = in_clause("r", part)
        binds.update(status_binds)
        binds[":entity"] = staging_requests.ENTITY
        found += db.query_dicts(
            "SELECT entity_id AS request_id, from_status, to_status, reason, transition_time, transition_id "
            f"FROM {db.table(TRANSITIONS)} WHERE entity_type=:entity AND entity_id IN {id_sql} AND to_status IN {status_sql} "
            "ORDER BY transition_id",
            binds,
        )
    return sorted(found, key=lambda r: r["transition_id"])


def skip_reasons(db: WfDatabase, workflow_id: int, limit: int) -> dict[int, str]:
    """Why each skipped step of a workflow was skipped: the reason of its newest transition to ``skipped`` (the
    engine's words: the condition that was false, the parent that failed, the workflow finishing). Newest first,
    capped at ``limit`` transitions."""
    rows = db.query(
        "SELECT * FROM (SELECT t.entity_id, t.reason FROM "
        f"{db.table(TRANSITIONS)} t, {db.table(STEPS)} s WHERE t.workflow_id=:wf AND t.entity_type='step' AND t.to_status='skipped' "
        "AND s.step_id=t.entity_id AND s.status='skipped' ORDER BY t.transition_id DESC) WHERE rownum<=:n ",
        {":wf": workflow_id, ":n": limit},
    )
    found: dict[int, str] = {}
    for step_id, reason in rows:
        found.setdefault(int(step_id), reason or "")
    return found


def staging_of_workflow(db: WfDatabase, workflow_id: int, limit: int) -> list[dict]:
    """The staging requests the JEDI tasks of a workflow's steps wait on (or waited on), with their progress: files and
    bytes staged against the dataset's, the request's status, tape, destination and last error; capped."""
    return db.query_dicts(
        "SELECT * FROM (SELECT s.step_id, rel.jedi_task_id, rel.released_time, req.request_id, req.dataset, req.status, req.source_rse, "
        "req.destination_rse, req.total_files, req.staged_files, req.dataset_size, req.staged_size, req.n_source_switches, "
        "req.last_progress_time, req.start_time, req.end_time, req.error_dialog "
        f"FROM {db.table(STEPS)} s, {db.table(RELATIONS)} rel, {db.table(REQUESTS)} req "
        "WHERE s.workflow_id=:wf AND rel.jedi_task_id=s.jedi_task_id AND req.request_id=rel.request_id "
        "ORDER BY s.step_id, req.request_id) WHERE rownum<=:n ",
        {":wf": workflow_id, ":n": limit},
    )


# ---- workflow-level pre-staging (taskbuffer/staging_prestages.py writes JEDI_DC_PRESTAGES) --------------------------

_PRESTAGE_COLUMNS = (
    "p.workflow_id, p.dataset, p.node_key, p.ready_time, p.need_by_time, p.request_id, p.outcome, p.creation_time, p.taken_time, "
    "p.released_time, r.status AS request_status, r.source_rse, r.destination_rse, r.total_files, r.staged_files, r.dataset_size, "
    "r.staged_size, r.need_by_time AS request_need_by_time, r.error_dialog AS request_error"
)


def prestages_of_workflow(db: WfDatabase, workflow_id: int, limit: int) -> list[dict]:
    """A workflow's planned pre-stages (by its key, JEDI_DC_PRESTAGES' primary key) with the request each made or
    joined, earliest need-by first; capped."""
    return db.query_dicts(
        f"SELECT * FROM (SELECT {_PRESTAGE_COLUMNS} FROM {db.table(PRESTAGES)} p LEFT OUTER JOIN {db.table(REQUESTS)} r "
        "ON r.request_id=p.request_id WHERE p.workflow_id=:wf ORDER BY p.need_by_time, p.dataset) WHERE rownum<=:n ",
        {":wf": workflow_id, ":n": limit},
    )


def prestage_requests(db: WfDatabase, since: datetime.datetime, limit: int) -> list[dict]:
    """The staging requests pre-stages made or joined, with the workflow of each pre-stage: those not released yet or
    released after ``since`` (index on taken_time, released_time), earliest need-by first; capped."""
    return db.query_dicts(
        f"SELECT * FROM (SELECT {_PRESTAGE_COLUMNS}, w.name AS workflow_name, w.user_name, w.status AS workflow_status "
        f"FROM {db.table(PRESTAGES)} p, {db.table(REQUESTS)} r, {db.table(WORKFLOWS)} w "
        "WHERE p.taken_time IS NOT NULL AND (p.released_time IS NULL OR p.released_time>=:since) AND r.request_id=p.request_id "
        "AND w.workflow_id=p.workflow_id ORDER BY p.need_by_time, p.request_id, p.workflow_id) WHERE rownum<=:n ",
        {":since": since, ":n": limit},
    )
