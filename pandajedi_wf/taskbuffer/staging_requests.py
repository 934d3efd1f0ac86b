"""JEDI_DC_REQUESTS: one row per dataset being staged from tape, shared by every task that needs it.

Rows are read and written as the carousel core's ``RequestRecord``.  Every status change is an UPDATE guarded by
``AND status=:old`` and is recorded in JEDI_WF_TRANSITIONS (entity_type 'staging') in the same transaction, so the
history never disagrees with the row and two writers can never both move the same request.

Column mapping (core field -> column): n_files -> total_files, n_bytes -> dataset_size, files_done -> staged_files,
user -> owner_user, task_priority -> priority, on_disk -> pin_only, switches -> n_source_switches, source ->
source_rse (and source_tape), destination -> destination_rse, started_at/done_at -> start_time/end_time,
last_progress_at -> last_progress_time, error -> error_dialog.  The JSON column ``tried_sources`` holds
``{"tried": [...], "candidates": [...], "expected_start_at": epoch, "rule_attempts": n, "retry_after": epoch,
"dead": [...], "boosted_at": epoch, "rule_priority": n}``: the tapes already tried, the tapes holding a complete
replica (found at intake), when the chosen tape should reach this request's files, the failed rule creations with
the back-off they set (``carousel.rule_errors``), the tapes that answered NO_SOURCES, when the rule's STUCK files were
boosted and the Rucio priority last set on the rule (``carousel.progress``). ``staged_size`` holds the bytes on disk
summed from the rule's OK locks (``bytes_done``; NULL until first read).
Times are float epoch seconds in the core and naive-UTC timestamps in the table.
"""

from __future__ import annotations

import datetime
from dataclasses import replace
from typing import Iterable

from pandajedi_wf.carousel import lifecycle as lc
from pandajedi_wf.carousel.cycle import RequestRecord
from pandajedi_wf.carousel.state import StagingRequest

from . import transitions
from .connection import DatabaseError, WfDatabase, chunks, in_clause, json_text, json_value

TABLE = "JEDI_DC_REQUESTS"
SEQUENCE = "JEDI_DC_REQUEST_ID_SEQ"
ENTITY = "staging"
ACTIVE = tuple(sorted(set(lc.STAGING_REQUEST.states) - lc.STAGING_REQUEST.final))

_COLUMNS = (
    "request_id, dataset, scope, source_rse, destination_rse, rule_id, status, total_files, staged_files, staged_size, dataset_size, "
    "gshare, owner_user, priority, pin_only, n_source_switches, tried_sources, last_progress_time, creation_time, "
    "start_time, end_time, error_dialog, need_by_time"
)


class StaleRequestError(RuntimeError):
    """The request is no longer in the status the caller read: another writer moved it first."""


def to_timestamp(epoch: float | None) -> datetime.datetime | None:
    if epoch is None:
        return None
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).replace(tzinfo=None)


def to_epoch(value: datetime.datetime | None) -> float | None:
    if value is None:
        return None
    return value.replace(tzinfo=datetime.timezone.utc).timestamp()


def is_unique_violation(exc: BaseException) -> bool:
    """True for a duplicate-key error from either backend (Postgres 23505, Oracle ORA-00001)."""
    seen = exc
    while seen is not None:
        if getattr(seen, "pgcode", None) == "23505" or "ORA-00001" in str(seen) or type(seen).__name__ == "UniqueViolation":
            return True
        seen = seen.__cause__
    return False


def _record(row: dict) -> RequestRecord:
    doc = json_value(row["tried_sources"]) or {}
    request = StagingRequest(
        request_id=int(row["request_id"]),
        dataset=row["dataset"],
        n_files=int(row["total_files"] or 0),
        n_bytes=int(row["dataset_size"] or 0),
        user=row["owner_user"] or "",
        gshare=row["gshare"] or "",
        destination=row["destination_rse"] or "",
        sources=tuple(doc.get("candidates", ())),
        on_disk=bool(row["pin_only"]),
        task_priority=int(row["priority"] or 0),
        created_at=to_epoch(row["creation_time"]) or 0.0,
        need_by=to_epoch(row["need_by_time"]),
    )
    return RequestRecord(
        request=request,
        status=row["status"],
        source=row["source_rse"],
        rule_id=row["rule_id"],
        files_done=int(row["staged_files"] or 0),
        last_progress_at=to_epoch(row["last_progress_time"]) or 0.0,
        expected_start_at=float(doc.get("expected_start_at", 0.0)),
        switches=int(row["n_source_switches"] or 0),
        tried=tuple(doc.get("tried", ())),
        started_at=to_epoch(row["start_time"]),
        done_at=to_epoch(row["end_time"]),
        error=row["error_dialog"] or "",
        rule_attempts=int(doc.get("rule_attempts", 0)),
        retry_after=float(doc.get("retry_after", 0.0)),
        bytes_done=int(row["staged_size"]) if row["staged_size"] is not None and row["staged_files"] else None,
        boosted_at=float(doc.get("boosted_at", 0.0)),
        dead=tuple(doc.get("dead", ())),
        rule_priority=int(doc.get("rule_priority", 0)),
    )


def _source_document(rec: RequestRecord) -> str:
    doc = {"tried": list(rec.tried), "candidates": list(rec.request.sources), "expected_start_at": rec.expected_start_at}
    if rec.rule_attempts:
        doc.update(rule_attempts=rec.rule_attempts, retry_after=rec.retry_after)
    if rec.dead:
        doc["dead"] = list(rec.dead)
    if rec.boosted_at:
        doc["boosted_at"] = rec.boosted_at
    if rec.rule_priority:
        doc["rule_priority"] = rec.rule_priority
    return json_text(doc)


def records(db: WfDatabase, statuses: Iterable[str]) -> list[RequestRecord]:
    status_sql, binds = in_clause("st", sorted(set(statuses)))
    rows = db.query_dicts(f"SELECT {_COLUMNS} FROM {db.table(TABLE)} WHERE status IN {status_sql} ORDER BY request_id", binds)
    return [_record(row) for row in rows]


def get(db: WfDatabase, request_id: int) -> RequestRecord | None:
    rows = db.query_dicts(f"SELECT {_COLUMNS} FROM {db.table(TABLE)} WHERE request_id=:id", {":id": request_id})
    return _record(rows[0]) if rows else None


def active_by_dataset(db: WfDatabase, datasets: Iterable[str]) -> dict[str, RequestRecord]:
    """The request of each dataset that is not in a final status (at most one, see ``insert``)."""
    found: dict[str, RequestRecord] = {}
    status_sql, status_binds = in_clause("st", ACTIVE)
    for part in chunks(sorted(set(datasets)), 500):
        ds_sql, binds = in_clause("ds", part)
        binds.update(status_binds)
        for row in db.query_dicts(f"SELECT {_COLUMNS} FROM {db.table(TABLE)} WHERE dataset IN {ds_sql} AND status IN {status_sql}", binds):
            found[row["dataset"]] = _record(row)
    return found


def _first_reason(request: StagingRequest) -> str:
    return "a workflow pre-stages the dataset for a later step" if request.need_by is not None else "a task needs the dataset from tape"


def insert(db: WfDatabase, request: StagingRequest, scope: str | None, now: float, actor: str, reason: str | None = None) -> int | None:
    """Add a queued request; None when another process inserted one for the dataset first (unique index). ``reason``:
    its first history line (default: who needs the dataset, a task or a workflow's pre-stage)."""
    try:
        with db.transaction():
            (request_id,) = db.next_ids(SEQUENCE, 1)
            rec = RequestRecord(replace(request, request_id=request_id))
            db.execute(
                f"INSERT INTO {db.table(TABLE)} (request_id, dataset, scope, destination_rse, status, total_files, staged_files, "
                "dataset_size, staged_size, gshare, owner_user, priority, pin_only, n_source_switches, tried_sources, "
                "creation_time, modification_time, need_by_time) "
                "VALUES (:id, :dataset, :scope, :destination, :status, :n_files, 0, :n_bytes, 0, :gshare, :owner, :priority, "
                ":pin_only, 0, :sources, :now, :now, :need_by) ",
                {
                    ":id": request_id,
                    ":dataset": request.dataset,
                    ":scope": scope,
                    ":destination": request.destination,
                    ":status": lc.QUEUED,
                    ":n_files": request.n_files,
                    ":n_bytes": request.n_bytes,
                    ":gshare": request.gshare,
                    ":owner": request.user,
                    ":priority": request.task_priority,
                    ":pin_only": 1 if request.on_disk else 0,
                    ":sources": _source_document(rec),
                    ":now": to_timestamp(now),
                    ":need_by": to_timestamp(request.need_by),
                },
            )
            transitions.record(
                db, [transitions.TransitionRecord(ENTITY, request_id, None, None, lc.QUEUED, reason or _first_reason(request), actor, to_timestamp(now))]
            )
    except DatabaseError as exc:
        if is_unique_violation(exc):
            return None
        raise
    return request_id


def taken_by_tasks(db: WfDatabase, request_id: int, priority: int, now: float) -> None:
    """Tasks now wait on the request: admission sees their priority, and a workflow's pre-stage becomes theirs (no
    need-by: it is no longer queued behind the tasks, it is theirs)."""
    db.execute(
        f"UPDATE {db.table(TABLE)} SET priority=CASE WHEN priority<:priority THEN :priority ELSE priority END, need_by_time=NULL, "
        "modification_time=:now WHERE request_id=:id AND (priority<:priority OR need_by_time IS NOT NULL) ",
        {":id": request_id, ":priority": priority, ":now": to_timestamp(now)},
    )


def need_by_earlier(db: WfDatabase, request_id: int, need_by: float, now: float) -> None:
    """Another workflow's pre-stage joins a request only pre-stages want: the earliest need-by counts."""
    db.execute(
        f"UPDATE {db.table(TABLE)} SET need_by_time=:need_by, modification_time=:now WHERE request_id=:id AND need_by_time>:need_by ",
        {":id": request_id, ":need_by": to_timestamp(need_by), ":now": to_timestamp(now)},
    )


def save(db: WfDatabase, rec: RequestRecord, status: str, changes: dict, now: float, actor: str) -> RequestRecord:
    """Write ``rec`` moved to ``status`` with ``changes``; guarded on the status read, history in the same transaction."""
    moved = status != rec.status
    if moved:
        rule = lc.STAGING_REQUEST.check(rec.status, status)
    new = replace(rec, status=status, **changes)
    binds = {
        ":id": rec.request.request_id,
        ":old": rec.status,
        ":status": status,
        ":source": new.source,
        ":rule_id": new.rule_id,
        ":files_done": new.files_done,
        ":staged_size": new.request.n_bytes - new.bytes_left,
        ":switches": new.switches,
        ":sources": _source_document(new),
        ":last_progress": to_timestamp(new.last_progress_at),
        ":start": to_timestamp(new.started_at),
        ":end": to_timestamp(new.done_at),
        ":error": (new.error or "")[:4000] or None,
        ":now": to_timestamp(now),
    }
    sql = (
        f"UPDATE {db.table(TABLE)} SET status=:status, source_rse=:source, source_tape=:source, rule_id=:rule_id, "
        "staged_files=:files_done, staged_size=:staged_size, n_source_switches=:switches, tried_sources=:sources, "
        "last_progress_time=:last_progress, start_time=:start, end_time=:end, error_dialog=:error, modification_time=:now "
    )
    if moved:
        sql += ", prev_status=:old "
        if status in (lc.SUBMITTING, lc.SWITCHING):
            sql += ", rule_intent_time=:now "
    sql += "WHERE request_id=:id AND status=:old "
    with db.transaction():
        if db.execute(sql, binds).rowcount != 1:
            raise StaleRequestError(f"staging request {rec.request.request_id} ({rec.request.dataset}) is no longer {rec.status!r}")
        if moved:
            reason = new.error if new.error and status in (lc.QUEUED, lc.SWITCHING, lc.FAILED) else rule.why
            transitions.record(
                db, [transitions.TransitionRecord(ENTITY, rec.request.request_id, None, rec.status, status, reason, actor, to_timestamp(now))]
            )
    return new


def counts_by_status(db: WfDatabase) -> dict[str, int]:
    return {status: int(n) for status, n in db.query(f"SELECT status, COUNT(*) FROM {db.table(TABLE)} GROUP BY status")}
