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


def register_many(db: WfDatabase, rows: list[tuple[int, int, str, str]], now: datetime.datetime,
                  first_submissions: frozenset[int] | set[int] = frozenset()) -> None:
    """(workflow_id, producer step_id, container, type) for a batch of submissions; names already known are kept
    (a step submitted again after a transient failure writes the same containers). The containers of the steps in
    ``first_submissions`` (submitted for the first time) are not looked up: a container is named after its step's
    task and registered only with that step's submission, so none can exist yet (the unique key would refuse one)."""
    if not rows:
        return
    wanted = {(w, n) for w, s, n, _ in rows if s not in first_submissions}
    known: set[tuple[int, str]] = set()
    for part in chunks(sorted({w for w, _ in wanted}), 500):  # both lists probe the (workflow_id, name) index
        wf_sql, binds = in_clause("w", part)
        in_part = set(part)
        names = sorted({n for w, n in wanted if w in in_part})
        for names_part in chunks(names, 500):
            name_sql, name_binds = in_clause("n", names_part)
            found = db.query(f"SELECT workflow_id, name FROM {db.table(TABLE)} WHERE workflow_id IN {wf_sql} AND name IN {name_sql}",
                             binds | name_binds)
            known.update(pair for pair in ((int(w), n) for w, n in found) if pair in wanted)
    fresh = list({(w, n): (w, s, n, t) for w, s, n, t in rows if (w, n) not in known}.values())
    db.insert_rows(
        TABLE,
        ("data_id", "workflow_id", "producer_step_id", "name", "data_type", "status", "n_files", "n_files_done", "creation_time", "modification_time"),
        [(i, w, s, n, t, "generating", 0, 0, now, now) for i, (w, s, n, t) in zip(db.next_ids(SEQUENCE, len(fresh)), fresh)],
    )


# what a producing step's end means for the containers it writes
DATA_STATUS_OF_STEP = {"done": "complete", "finished": "partial", "failed": "failed", "cancelled": "failed", "skipped": "failed"}


def follow_producers(db: WfDatabase, step_status: list[tuple[int, int, str]], now: datetime.datetime) -> None:
    """(workflow_id, step_id, status): containers take the outcome of their producing steps, one statement per
    outcome and 500 steps (the workflow ids let it use the (workflow_id, name) index instead of a scan)."""
    groups: dict[str, list[tuple[int, int]]] = {}
    for workflow_id, step_id, status in step_status:
        if status in DATA_STATUS_OF_STEP:
            groups.setdefault(DATA_STATUS_OF_STEP[status], []).append((workflow_id, step_id))
    for status, pairs in groups.items():
        for part in chunks(pairs, 500):
            wf_sql, binds = in_clause("w", sorted({w for w, _ in part}))
            step_sql, step_binds = in_clause("s", [s for _, s in part])
            binds.update(step_binds)
            binds.update({":status": status, ":now": now})
            db.execute(
                f"UPDATE {db.table(TABLE)} SET status=:status, modification_time=:now WHERE workflow_id IN {wf_sql} "
                f"AND producer_step_id IN {step_sql}",
                binds,
            )
