"""Guarded status changes of many rows of one of our tables, in one statement per (from, to) pair and 500 rows.

Workflows and steps (both carry status, prev_status, status_change_time, modification_time) use it, so a batch of
decisions costs a handful of statements while every row is still moved only from the status the decision saw.
"""

from __future__ import annotations

import datetime

from .connection import WfDatabase, chunks, in_clause


def guarded_status_changes(
    db: WfDatabase, table: str, key: str, changes: list[tuple[int, str, str]], now: datetime.datetime, also: str = ""
) -> list[int]:
    """(row id, from, to) for rows of ``table`` keyed by ``key``; returns the ids of the chunks that lost a race
    (some row was no longer in its ``from`` status), so the caller decides whether that is an error. ``also``:
    more assignments (SQL text without binds) made with the status change."""
    groups: dict[tuple[str, str], list[int]] = {}
    for row_id, old, new in changes:
        groups.setdefault((old, new), []).append(row_id)
    lost: list[int] = []
    for (old, new), ids in groups.items():
        for part in chunks(ids, 500):
            id_sql, binds = in_clause("id", part)
            binds.update({":to_status": new, ":from_status": old, ":now": now})
            cur = db.execute(
                f"UPDATE {db.table(table)} SET status=:to_status, prev_status=status, {also + ', ' if also else ''}"
                "status_change_time=:now, modification_time=:now "
                f"WHERE status=:from_status AND {key} IN {id_sql}",
                binds,
            )
            if cur.rowcount != len(part):
                lost.extend(part)
    return lost
