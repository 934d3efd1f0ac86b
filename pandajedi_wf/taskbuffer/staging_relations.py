"""JEDI_DC_RELATIONS: which JEDI task waits on which staging request, keyed (request_id, jedi_task_id).

A request is shared by every task that needs its dataset; ``released_time`` is set once the task got all of the
dataset's files and no longer needs the carousel for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .connection import WfDatabase, chunks, in_clause
from .staging_requests import to_timestamp

TABLE = "JEDI_DC_RELATIONS"


@dataclass(frozen=True)
class Relation:
    request_id: int
    jedi_task_id: int
    released: bool


def add(db: WfDatabase, request_id: int, jedi_task_ids: Iterable[int], now: float) -> int:
    """Relate tasks to a request (existing pairs are left alone); returns how many pairs are new."""
    wanted = sorted(set(jedi_task_ids))
    if not wanted:
        return 0
    id_sql, binds = in_clause("t", wanted)
    binds[":rid"] = request_id
    have = {int(t) for (t,) in db.query(f"SELECT jedi_task_id FROM {db.table(TABLE)} WHERE request_id=:rid AND jedi_task_id IN {id_sql}", binds)}
    rows = [{":rid": request_id, ":tid": t, ":now": to_timestamp(now)} for t in wanted if t not in have]
    db.executemany(f"INSERT INTO {db.table(TABLE)} (request_id, jedi_task_id, creation_time) VALUES (:rid, :tid, :now) ", rows)
    return len(rows)


def of_requests(db: WfDatabase, request_ids: Iterable[int]) -> dict[int, list[Relation]]:
    found: dict[int, list[Relation]] = {}
    for part in chunks(sorted(set(request_ids)), 500):
        id_sql, binds = in_clause("r", part)
        for rid, tid, released in db.query(f"SELECT request_id, jedi_task_id, released_time FROM {db.table(TABLE)} WHERE request_id IN {id_sql}", binds):
            found.setdefault(int(rid), []).append(Relation(int(rid), int(tid), released is not None))
    return found


def datasets_of_tasks(db: WfDatabase, jedi_task_ids: Iterable[int], statuses: Iterable[str]) -> set[tuple[int, str]]:
    """(task, dataset) pairs already related to a request in one of ``statuses``: intake skips them."""
    found: set[tuple[int, str]] = set()
    status_sql, status_binds = in_clause("st", sorted(set(statuses)))
    for part in chunks(sorted(set(jedi_task_ids)), 500):
        id_sql, binds = in_clause("t", part)
        binds.update(status_binds)
        rows = db.query(
            f"SELECT rel.jedi_task_id, req.dataset FROM {db.table(TABLE)} rel, {db.table('JEDI_DC_REQUESTS')} req "
            f"WHERE rel.request_id=req.request_id AND rel.jedi_task_id IN {id_sql} AND req.status IN {status_sql}",
            binds,
        )
        found.update((int(t), ds) for t, ds in rows)
    return found


def release(db: WfDatabase, request_id: int, jedi_task_id: int, now: float) -> None:
    db.execute(
        f"UPDATE {db.table(TABLE)} SET released_time=:now WHERE request_id=:rid AND jedi_task_id=:tid AND released_time IS NULL ",
        {":rid": request_id, ":tid": jedi_task_id, ":now": to_timestamp(now)},
    )


def release_told(db: WfDatabase, request_id: int, jedi_task_id: int) -> None:
    """Let a task go from a request that failed for good once it was told: ``released_time`` on the database's clock
    (``CURRENT_DATE``, as JEDI stamps its task attempts in TASK_ATTEMPTS), so a later retry of the task is told apart
    by one clock whatever the carousel's own (``carousel_jedi.attempt_start_times``, ``task_routing.staged_again``)."""
    db.execute(
        f"UPDATE {db.table(TABLE)} SET released_time=CURRENT_DATE WHERE request_id=:rid AND jedi_task_id=:tid AND released_time IS NULL ",
        {":rid": request_id, ":tid": jedi_task_id},
    )
