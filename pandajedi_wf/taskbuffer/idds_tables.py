"""Read-only access to iDDS's REQUESTS, TRANSFORMS, COLLECTIONS and CONTENTS through the views in PanDA's schema.

The views (pandajedi_wf/sql/*/80_jedi_idds_views.sql) list their columns explicitly, so an iDDS schema migration that adds columns
does not break PanDA. iDDS status integers are turned into names here, once (FIELD_GUIDE §8).
"""

from __future__ import annotations

from .connection import WfDatabase, in_clause

REQUESTS_VIEW = "JEDI_IDDS_REQUESTS_V"
TRANSFORMS_VIEW = "JEDI_IDDS_TRANSFORMS_V"
COLLECTIONS_VIEW = "JEDI_IDDS_COLLECTIONS_V"
CONTENTS_VIEW = "JEDI_IDDS_CONTENTS_V"

REQUEST_STATUS = {0: "new", 1: "ready", 2: "transforming", 3: "finished", 4: "subfinished", 5: "failed", 9: "cancelled", 12: "suspended"}
COLLECTION_STATUS = {
    0: "new", 1: "updated", 2: "processing", 3: "open", 4: "closed", 5: "subclosed",
    6: "failed", 7: "deleted", 8: "cancelled", 9: "suspended",
}
CONTENT_STATUS = {
    0: "new", 1: "processing", 2: "available", 3: "failed", 4: "finalfailed", 5: "lost", 6: "deleted", 7: "mapped",
    8: "fakeavailable", 9: "missing", 10: "cancelled", 11: "activated", 12: "subavailable", 13: "finalsubavailable",
    14: "preprocessing",
}
RELATION_TYPE = {0: "input", 1: "output", 2: "log"}


def _name(table: dict[int, str], value) -> str:
    return table.get(int(value), f"unknown({value})") if value is not None else "unknown"


def requests_for_task(db: WfDatabase, jedi_task_id: int) -> list[dict]:
    """The iDDS requests whose transforms run as this JEDI task (iDDS records the task id as workload_id)."""
    rows = db.query_dicts(
        f"SELECT r.request_id, r.scope, r.name, r.requester, r.request_type, r.username, r.status, r.created_at, r.updated_at "
        f"FROM {db.table(REQUESTS_VIEW)} r WHERE r.request_id IN "
        f"(SELECT t.request_id FROM {db.table(TRANSFORMS_VIEW)} t WHERE t.workload_id=:task) "
        "ORDER BY r.request_id",
        {":task": jedi_task_id},
    )
    for row in rows:
        row["status"] = _name(REQUEST_STATUS, row["status"])
    return rows


def collections_for_task(db: WfDatabase, jedi_task_id: int) -> list[dict]:
    """Input, output and log collections of the transforms behind a JEDI task, with their file counters."""
    rows = db.query_dicts(
        f"SELECT c.coll_id, c.request_id, c.transform_id, c.relation_type, c.scope, c.name, c.status, "
        "c.total_files, c.processed_files, c.failed_files "
        f"FROM {db.table(COLLECTIONS_VIEW)} c WHERE c.transform_id IN "
        f"(SELECT t.transform_id FROM {db.table(TRANSFORMS_VIEW)} t WHERE t.workload_id=:task) "
        "ORDER BY c.relation_type, c.coll_id",
        {":task": jedi_task_id},
    )
    for row in rows:
        row["relation_type"] = _name(RELATION_TYPE, row["relation_type"])
        row["status"] = _name(COLLECTION_STATUS, row["status"])
    return rows


def file_states(db: WfDatabase, coll_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per collection, how many files are in each iDDS content status (one grouped query for all collections)."""
    if not coll_ids:
        return {}
    coll_sql, binds = in_clause("coll", coll_ids)
    rows = db.query(
        f"SELECT coll_id, status, COUNT(*) FROM {db.table(CONTENTS_VIEW)} WHERE coll_id IN {coll_sql} GROUP BY coll_id, status",
        binds,
    )
    states: dict[int, dict[str, int]] = {int(c): {} for c in coll_ids}
    for coll_id, status, count in rows:
        states[int(coll_id)][_name(CONTENT_STATUS, status)] = int(count)
    return states


def task_file_summary(db: WfDatabase, jedi_task_id: int) -> dict:
    """What a user asks of an iDDS-driven task: its requests, collections and file states, in one structure."""
    collections = collections_for_task(db, jedi_task_id)
    states = file_states(db, [c["coll_id"] for c in collections])
    for coll in collections:
        coll["file_states"] = states.get(int(coll["coll_id"]), {})
    return {"jedi_task_id": jedi_task_id, "requests": requests_for_task(db, jedi_task_id), "collections": collections}
