"""JEDI_WF_AGENT_HEARTBEATS: one row per (agent, process), rewritten at the end of every cycle.

It is how an operator (and the monitoring page) sees that our JEDI plugins are alive and what their last cycle did.
"""

from __future__ import annotations

import datetime

from .connection import WfDatabase, json_text, json_value

TABLE = "JEDI_WF_AGENT_HEARTBEATS"


def record_cycle(
    db: WfDatabase,
    agent: str,
    pid: str,
    host: str,
    cycle_start: datetime.datetime,
    cycle_end: datetime.datetime,
    status: str,
    message: str,
    stats: dict,
) -> None:
    binds = {
        ":agent": agent,
        ":pid": pid,
        ":host": host,
        ":cycle_start": cycle_start,
        ":cycle_end": cycle_end,
        ":status": status,
        ":message": message[:4000],
        ":stats": json_text(stats),
    }
    with db.transaction():
        cur = db.execute(
            f"UPDATE {db.table(TABLE)} SET host=:host, cycle_start=:cycle_start, cycle_end=:cycle_end, "
            "n_cycles=n_cycles+1, last_status=:status, last_message=:message, stats=:stats "
            "WHERE agent=:agent AND pid=:pid ",
            binds,
        )
        if cur.rowcount == 0:
            db.execute(
                f"INSERT INTO {db.table(TABLE)} (agent, pid, host, cycle_start, cycle_end, n_cycles, last_status, last_message, stats) "
                "VALUES (:agent, :pid, :host, :cycle_start, :cycle_end, 1, :status, :message, :stats) ",
                binds,
            )


def list_heartbeats(db: WfDatabase, agent: str | None = None) -> list[dict]:
    sql = f"SELECT agent, pid, host, cycle_start, cycle_end, n_cycles, last_status, last_message, stats FROM {db.table(TABLE)} "
    binds = {}
    if agent is not None:
        sql += "WHERE agent=:agent "
        binds[":agent"] = agent
    rows = db.query_dicts(sql + "ORDER BY agent, pid", binds)
    for row in rows:
        row["stats"] = json_value(row["stats"])
    return rows
