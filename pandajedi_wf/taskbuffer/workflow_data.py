"""JEDI_WF_DATA: the datasets (containers) a workflow's steps write, with their file counts as JEDI reports them."""

from __future__ import annotations

import datetime

from .connection import WfDatabase, chunks, in_clause

TABLE = "JEDI_WF_DATA"
SEQUENCE = "JEDI_WF_DATA_ID_SEQ"


def for_workflow(db: WfDatabase, workflow_id: int) -> list[dict]:
    return db.query_dicts(
        f"SELECT data_id, producer_step_id, name, data_type, status, n_files, n_files_done, modification_time FROM {db.table(TABLE)} "
        "WHERE workflow_id=:wf ORDER BY data_id",
        {":wf": workflow_id},
    )


def register_many(db: WfDatabase, rows: list[tuple[int, int, str, str]], now: datetime.datetime) -> None:
    """(workflow_id, producer step_id, container, type) for a batch of submissions; names already known are kept
    (a step submitted again after a transient failure writes the same containers)."""
    if not rows:
        return
    known: set[tuple[int, str]] = set()
    for part in chunks(sorted({r[0] for r in rows}), 500):
        id_sql, binds = in_clause("wf", part)
        known.update((int(w), n) for w, n in db.query(f"SELECT workflow_id, name FROM {db.table(TABLE)} WHERE workflow_id IN {id_sql}", binds))
    fresh = {(w, n): (w, s, n, t) for w, s, n, t in rows if (w, n) not in known}
    db.executemany(
        f"INSERT INTO {db.table(TABLE)} (data_id, workflow_id, producer_step_id, name, data_type, status, n_files, n_files_done, "
        f"creation_time, modification_time) VALUES ({db.table(SEQUENCE)}.nextval, :wf, :step, :name, :type, 'generating', 0, 0, :now, :now) ",
        [{":wf": w, ":step": s, ":name": n, ":type": t, ":now": now} for w, s, n, t in fresh.values()],
    )


# what a producing step's end means for the containers it writes
DATA_STATUS_OF_STEP = {"done": "complete", "finished": "partial", "failed": "failed", "cancelled": "failed", "skipped": "failed"}


def follow_producers(db: WfDatabase, step_status: dict[int, str], now: datetime.datetime) -> None:
    """Containers take the outcome of their producing steps (one statement per outcome and 500 steps)."""
    groups: dict[str, list[int]] = {}
    for step_id, status in step_status.items():
        if status in DATA_STATUS_OF_STEP:
            groups.setdefault(DATA_STATUS_OF_STEP[status], []).append(step_id)
    for status, step_ids in groups.items():
        for part in chunks(step_ids, 500):
            id_sql, binds = in_clause("s", part)
            binds.update({":status": status, ":now": now})
            db.execute(f"UPDATE {db.table(TABLE)} SET status=:status, modification_time=:now WHERE producer_step_id IN {id_sql}", binds)
