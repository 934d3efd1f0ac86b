"""JEDI_WF_WORKFLOWS: one row per workflow; claimed by processors in batches with SKIP LOCKED plus a lease."""

from __future__ import annotations

import datetime

from .connection import SKIP_LOCKED, WfDatabase, in_clause

TABLE = "JEDI_WF_WORKFLOWS"
SEQUENCE = "JEDI_WF_WORKFLOW_ID_SEQ"


def claim_due(
    db: WfDatabase,
    statuses: list[str] | tuple[str, ...],
    owner: str,
    now: datetime.datetime,
    lease_seconds: int,
    batch_size: int,
) -> list[int]:
    """Lease up to ``batch_size`` due workflows to ``owner``; rows locked or leased by another processor are skipped.

    The lease (locked_by, lock_time) outlives the short claiming transaction, so N processors can share the table
    without holding row locks while they talk to JEDI, and a crashed processor's lease simply expires.
    """
    status_sql, binds = in_clause("st", statuses)
    binds.update({":now": now, ":expired": now - datetime.timedelta(seconds=lease_seconds), ":n": batch_size})
    with db.transaction():
        rows = db.query(
            f"SELECT workflow_id FROM {db.table(TABLE)} WHERE status IN {status_sql} AND check_after<=:now "
            "AND (locked_by IS NULL OR lock_time<:expired) AND rownum<=:n "
            f"{SKIP_LOCKED}",
            binds,
        )
        ids = [int(r[0]) for r in rows]
        if ids:
            id_sql, id_binds = in_clause("id", ids)
            id_binds.update({":owner": owner, ":now": now})
            db.execute(f"UPDATE {db.table(TABLE)} SET locked_by=:owner, lock_time=:now WHERE workflow_id IN {id_sql}", id_binds)
    return ids


def release(db: WfDatabase, workflow_ids: list[int], owner: str, check_after: datetime.datetime) -> None:
    """Give claimed workflows back, due again at ``check_after``; only the lease holder may release."""
    if not workflow_ids:
        return
    id_sql, binds = in_clause("id", workflow_ids)
    binds.update({":owner": owner, ":check_after": check_after})
    db.execute(
        f"UPDATE {db.table(TABLE)} SET locked_by=NULL, lock_time=NULL, check_after=:check_after "
        f"WHERE workflow_id IN {id_sql} AND locked_by=:owner",
        binds,
    )
