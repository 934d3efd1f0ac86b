"""JEDI_DC_PRESTAGES: the tape inputs of a workflow's later steps, planned when the workflow starts, keyed
(workflow_id, dataset).

Written by the workflow processor (``plan``: insert-if-absent, so a pass replayed after a crash adds nothing twice);
taken in by the carousel (``take``: the request it made or joined, or why none was needed) and released by it once the
workflow no longer needs the dataset (``release_ended``), its reading step was skipped (``release_skipped``) or a task
of the workflow took the request over (``release_handed_over``). A request no task and no unreleased pre-stage wants is retired like any other
(``daemons.data_carousel.retire_unused``).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Iterable

from pandajedi_wf.workflow.lifecycles import WORKFLOW_ENDED

from .connection import WfDatabase, chunks, in_clause

TABLE = "JEDI_DC_PRESTAGES"
# a workflow in these statuses no longer needs its pre-stages: ended, or cancelling / finishing (no new step starts)
RELEASING_STATUSES = tuple(sorted(WORKFLOW_ENDED | {"cancelling", "finishing"}))
# what the carousel found when it took a pre-stage in
REQUESTED = "requested"  # a new request was made for it
SHARED = "shared"  # an active request for the dataset existed: it joined that one
ON_DISK = "on_disk"  # a complete disk replica exists: nothing to recall
UNAVAILABLE = "unavailable"  # no complete replica anywhere: left to the step's own staging, which tells the task why


@dataclass(frozen=True)
class PlannedRow:
    workflow_id: int
    dataset: str
    node_key: str
    ready_time: datetime.datetime
    need_by_time: datetime.datetime


@dataclass(frozen=True)
class Prestage:
    workflow_id: int
    dataset: str
    node_key: str
    ready_time: datetime.datetime
    need_by_time: datetime.datetime
    user: str
    gshare: str | None
    request_id: int | None = None
    outcome: str | None = None
    released: bool = False


def plan(db: WfDatabase, rows: Iterable[PlannedRow], now: datetime.datetime) -> int:
    """Insert the rows not there yet (a workflow's (workflow_id, dataset) is planned once); returns how many are new."""
    rows = list(rows)
    if not rows:
        return 0
    have: set[tuple[int, str]] = set()
    for part in chunks(sorted({r.workflow_id for r in rows}), 500):
        id_sql, binds = in_clause("w", part)
        have |= {(int(w), d) for w, d in db.query(f"SELECT workflow_id, dataset FROM {db.table(TABLE)} WHERE workflow_id IN {id_sql}", binds)}
    new = {(r.workflow_id, r.dataset): r for r in rows if (r.workflow_id, r.dataset) not in have}
    db.executemany(
        f"INSERT INTO {db.table(TABLE)} (workflow_id, dataset, node_key, ready_time, need_by_time, creation_time) "
        "VALUES (:wid, :ds, :node, :ready, :need_by, :now) ",
        [{":wid": r.workflow_id, ":ds": r.dataset, ":node": r.node_key, ":ready": r.ready_time, ":need_by": r.need_by_time, ":now": now}
         for r in new.values()],
    )
    return len(new)



def _select(db: WfDatabase) -> str:
    """A pre-stage with its workflow's user and the global share JEDI gave the workflow's tasks (none submitted yet:
    NULL)."""
    return ("SELECT p.workflow_id, p.dataset, p.node_key, p.ready_time, p.need_by_time, w.user_name, "
            f"(SELECT MAX(t.gshare) FROM {db.table('JEDI_WF_STEPS')} s, {db.table('JEDI_Tasks')} t "
            "WHERE s.workflow_id=p.workflow_id AND t.jediTaskID=s.jedi_task_id), p.request_id, p.outcome, p.released_time ")


def _prestage(row) -> Prestage:
    wid, ds, node, ready, need_by, user, gshare, rid, outcome, released = row
    return Prestage(int(wid), ds, node, ready, need_by, user or "", gshare, int(rid) if rid is not None else None, outcome, released is not None)


def untaken(db: WfDatabase, limit: int = 1000) -> list[Prestage]:
    """Pre-stages the carousel has not taken in yet, of workflows that still need them, earliest need-by first."""
    status_sql, binds = in_clause("st", RELEASING_STATUSES)
    binds[":n"] = limit
    rows = db.query(
        f"{_select(db)} FROM {db.table(TABLE)} p, {db.table('JEDI_WF_WORKFLOWS')} w "
        f"WHERE p.workflow_id=w.workflow_id AND p.taken_time IS NULL AND p.released_time IS NULL AND w.status NOT IN {status_sql} "
        "ORDER BY p.need_by_time, p.workflow_id, p.dataset FETCH FIRST :n ROWS ONLY",
        binds,
    )
    return [_prestage(r) for r in rows]


def take(db: WfDatabase, workflow_id: int, dataset: str, request_id: int | None, outcome: str, now: datetime.datetime) -> bool:
    """Record what the carousel did for a pre-stage (guarded: only an untaken row); False if it was taken already."""
    cur = db.execute(
        f"UPDATE {db.table(TABLE)} SET request_id=:rid, outcome=:outcome, taken_time=:now "
        "WHERE workflow_id=:wid AND dataset=:ds AND taken_time IS NULL ",
        {":rid": request_id, ":outcome": outcome, ":now": now, ":wid": workflow_id, ":ds": dataset},
    )
    return cur.rowcount == 1


def release_ended(db: WfDatabase, now: datetime.datetime) -> int:
    """Release the pre-stages of workflows that no longer need them (``RELEASING_STATUSES``); returns how many."""
    status_sql, binds = in_clause("st", RELEASING_STATUSES)
    binds[":now"] = now
    cur = db.execute(
        f"UPDATE {db.table(TABLE)} SET released_time=:now WHERE released_time IS NULL AND workflow_id IN "
        f"(SELECT w.workflow_id FROM {db.table('JEDI_WF_WORKFLOWS')} w WHERE w.status IN {status_sql}) ",
        binds,
    )
    return int(cur.rowcount or 0)


def release_handed_over(db: WfDatabase, now: datetime.datetime) -> int:
    """Release the pre-stages whose request a task of their own workflow waits on now (a step's task took it over: from
    then on the request lives as long as its tasks need it); returns how many."""
    cur = db.execute(
        f"UPDATE {db.table(TABLE)} p SET released_time=:now WHERE p.released_time IS NULL AND p.request_id IS NOT NULL AND EXISTS "
        f"(SELECT 1 FROM {db.table('JEDI_DC_RELATIONS')} r, {db.table('JEDI_WF_STEPS')} s "
        "WHERE r.request_id=p.request_id AND s.jedi_task_id=r.jedi_task_id AND s.workflow_id=p.workflow_id) ",
        {":now": now},
    )
    return int(cur.rowcount or 0)


def release_skipped(db: WfDatabase, now: datetime.datetime) -> int:
    """Release the pre-stages whose reading step was skipped (a branch not taken, a parent without output): nothing of
    the workflow reads them there. Only a step of that exact key (a scatter copy or a loop iteration has its own key: its
    pre-stage waits for the workflow's end); returns how many."""
    cur = db.execute(
        f"UPDATE {db.table(TABLE)} p SET released_time=:now WHERE p.released_time IS NULL AND EXISTS "
        f"(SELECT 1 FROM {db.table('JEDI_WF_STEPS')} s WHERE s.workflow_id=p.workflow_id AND s.node_key=p.node_key AND s.status=:skipped) ",
        {":now": now, ":skipped": "skipped"},
    )
    return int(cur.rowcount or 0)


def holding(db: WfDatabase, request_ids: Iterable[int]) -> dict[int, bool]:
    """For each request some pre-stage was taken into: True while one of them is not released (it still holds it)."""
    found: dict[int, bool] = {}
    for part in chunks(sorted(set(request_ids)), 500):
        id_sql, binds = in_clause("r", part)
        for rid, released in db.query(f"SELECT request_id, released_time FROM {db.table(TABLE)} WHERE request_id IN {id_sql}", binds):
            found[int(rid)] = found.get(int(rid), False) or released is None
    return found
