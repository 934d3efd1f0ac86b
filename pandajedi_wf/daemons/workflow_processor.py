"""The workflow processor cycle: claim due workflows, advance them, give them back."""

from __future__ import annotations

import datetime

from pandajedi_wf.core.clock import utcnow
from pandajedi_wf.taskbuffer import workflows
from pandajedi_wf.taskbuffer.connection import WfDatabase

from .common import CycleStats, process_id

ACTIVE_STATUSES = ("registered", "active", "finishing")
LEASE_SECONDS = 600
BATCH_SIZE = 500
RECHECK_SECONDS = 60


def cycle(db: WfDatabase, stats: CycleStats, now: datetime.datetime | None = None, owner: str | None = None) -> str:
    now = now or utcnow()
    owner = owner or process_id()
    claimed = workflows.claim_due(db, ACTIVE_STATUSES, owner, now, LEASE_SECONDS, BATCH_SIZE)
    stats.add("workflows_claimed", len(claimed))
    workflows.release(db, claimed, owner, now + datetime.timedelta(seconds=RECHECK_SECONDS))
    return f"claimed {len(claimed)} workflows"
