"""JEDI_WF_TRANSITIONS: the append-only history of every status change of workflows, steps and staging requests.

Both the workflow processor and the carousel write here through ``record``, inside the same transaction as the
status change itself, so the history can never disagree with the current state.
"""

from __future__ import annotations

import datetime
from typing import NamedTuple

from .connection import WfDatabase

TABLE = "JEDI_WF_TRANSITIONS"
SEQUENCE = "JEDI_WF_TRANSITION_ID_SEQ"


class TransitionRecord(NamedTuple):
    """One history row (a tuple: a pass makes tens of thousands of them)."""

    entity_type: str  # 'workflow', 'step' or 'staging'
    entity_id: int
    workflow_id: int | None
    from_status: str | None
    to_status: str
    reason: str
    actor: str
    time: datetime.datetime


COLUMNS = ("transition_id", "entity_type", "entity_id", "workflow_id", "from_status", "to_status", "reason", "actor", "transition_time")


def record(db: WfDatabase, records: list[TransitionRecord]) -> None:
    ids = db.next_ids(SEQUENCE, len(records))
    db.insert_rows(
        TABLE,
        COLUMNS,
        [
            (i, r.entity_type, r.entity_id, r.workflow_id, r.from_status, r.to_status, (r.reason or "")[:4000], r.actor[:128], r.time)
            for i, r in zip(ids, records)
        ],
    )


def history(db: WfDatabase, entity_type: str, entity_id: int) -> list[dict]:
    return db.query_dicts(
        f"SELECT transition_id, from_status, to_status, reason, actor, transition_time FROM {db.table(TABLE)} "
        "WHERE entity_type=:entity_type AND entity_id=:entity_id ORDER BY transition_id",
        {":entity_type": entity_type, ":entity_id": entity_id},
    )


def workflow_history(db: WfDatabase, workflow_id: int) -> list[dict]:
    return db.query_dicts(
        f"SELECT transition_id, entity_type, entity_id, from_status, to_status, reason, actor, transition_time FROM {db.table(TABLE)} "
        "WHERE workflow_id=:workflow_id ORDER BY transition_id",
        {":workflow_id": workflow_id},
    )
